"""Live ingestion: venue clients on an asyncio loop, every message they receive handed to the sinks
(``dataflows.ingest_sinks``: a recording folder, the raw log in Kafka, or any object with
``write``/``flush``/``close``).

A client is anything with ``async def run(self, emit, stop: asyncio.Event)`` and ``stats:
venues.base.ClientStats``. Each sink has a writer thread and a queue of its own, so the loop never
waits for a disk or a broker. A sink that cannot write (disk full, Kafka's queue full) keeps its
messages queued, retrying each second, up to ``max_pending`` messages; past that the ingester
stops and fails (IngestFailed), saying how many messages were not written: it never drops them
silently. A stop (``stop`` set, ``duration_s`` over, Ctrl-C/SIGTERM in ``ingest``) ends the
clients first, then every sink writes what is queued and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from dataflows.ingest_sinks import Sink
from dataflows.kafka_publish import PublishFailed
from venues.base import ClientStats, Emit, Received

MAX_PENDING = 1_000_000  # messages a sink may hold unwritten (about 300 MB of Binance frames)
FLUSH_EVERY_S = 1.0
RETRY_EVERY_S = 1.0
PROGRESS_EVERY_S = 1.0


class Client(Protocol):
    stats: ClientStats

    async def run(self, emit: Emit, stop: asyncio.Event) -> None: ...


class IngestFailed(RuntimeError):
    """A sink could not write and the messages it held passed the bound, or it failed for good."""


@dataclass
class Progress:
    """What the ingester did so far, for the progress line."""

    seconds: float
    messages: dict[str, int]  # by connection
    rates: dict[str, float]  # messages/s by connection, over the last interval
    reconnects: int
    resyncs: int
    pending: int  # received, not yet written by the slowest sink
    problem: str | None  # a sink's write error or a client's last error

    def line(self) -> str:
        rates = ", ".join(f"{name} {rate:,.0f}/s" for name, rate in sorted(self.rates.items()))
        text = (
            f"{self.seconds:,.0f} s: {sum(self.messages.values()):,} messages ({rates or 'none yet'}); "
            f"{self.reconnects} reconnects, {self.resyncs} resyncs"
        )
        if self.pending > 1000:
            text += f"; {self.pending:,} waiting to be written"
        return text + (f"; {self.problem}" if self.problem else "")


@dataclass
class IngestSummary:
    seconds: float
    messages: dict[str, int]  # by connection
    reconnects: int
    resyncs: int
    sinks: list[str]
    written: dict[str, int]  # by sink
    files: list[str] = field(default_factory=list)  # recording files written
    topics: dict[str, int] = field(default_factory=dict)  # messages by Kafka topic
    stopped_by: str = "duration"
    last_error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class _Writer:
    """One sink's queue and writer thread."""

    def __init__(self, sink: Sink, max_pending: int, on_overflow: Callable[[], None]) -> None:
        self.sink = sink
        self.max_pending = max_pending
        self.on_overflow = on_overflow
        self.queue: deque[Received] = deque()
        self.written = 0
        self.error: str | None = None  # the last write error, while it lasts
        self.failed: BaseException | None = None  # fatal
        self.overflowed = 0  # messages that found the queue full
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"ingest writer {sink.name}", daemon=True)
        self._thread.start()

    def put(self, message: Received) -> None:
        if len(self.queue) >= self.max_pending or self.failed is not None:
            self.overflowed += 1
            self.on_overflow()
            return
        was_empty = not self.queue
        self.queue.append(message)
        if was_empty:
            self._wake.set()  # the writer sleeps on an empty queue: a message waits for no timer

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            self._wake.clear()
            closing = self._closing
            batch = [self.queue.popleft() for _ in range(len(self.queue))]
            if batch:
                self._write(batch)
            if self.failed is not None:
                return
            if time.monotonic() - last_flush >= FLUSH_EVERY_S or closing:
                last_flush = time.monotonic()
                self._call(self.sink.flush)
            if closing and not self.queue:
                if self.error is None:
                    self._call(self.sink.close)
                return
            if closing and self.error is not None:
                return  # it cannot write: the messages left are reported unwritten
            self._wake.wait(RETRY_EVERY_S if self.error else 0.05)

    def _write(self, batch: list[Received]) -> None:
        size = len(batch)
        try:
            self.sink.write(batch)
        except PublishFailed as error:
            self.failed, self.error = error, str(error)
        except OSError as error:
            self.error = f"cannot write to {self.sink.name}: {error.strerror or error}"
            self.written += size - len(batch)
            self.queue.extendleft(reversed(batch))  # keep them, in order, for the next try
            return
        else:
            self.written += size
            self.error = None

    def _call(self, action: Callable[[], None]) -> None:
        try:
            action()
        except PublishFailed as error:
            self.failed, self.error = error, str(error)
        except OSError as error:
            self.error = f"cannot write to {self.sink.name}: {error.strerror or error}"


class Ingester:
    """``clients`` into ``sinks``; ``run`` until stopped, ``summary`` after."""

    def __init__(
        self,
        clients: Sequence[Client],
        sinks: Sequence[Sink],
        max_pending: int = MAX_PENDING,
        listeners: Sequence[Emit] = (),
    ) -> None:
        """``listeners`` get every message too, at once, on the loop (they must not block: the flow's live
        source queues them), where a sink gets it from its writer thread."""
        if not sinks and not listeners:
            raise ValueError("nowhere to write: give a recording folder or a Kafka broker")
        self.clients = list(clients)
        self.sinks = list(sinks)
        self.listeners = list(listeners)
        self.max_pending = max_pending
        self.stopped_by = "stop"
        self._stop: asyncio.Event | None = None
        self._stop_asked = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writers: list[_Writer] = []
        self._started = time.monotonic()

    def emit(self, message: Received) -> None:
        for writer in self._writers:
            writer.put(message)
        for listener in self.listeners:
            listener(message)

    def stop(self, reason: str = "stop") -> None:
        """Ask the run to end; safe from any thread and from signal handlers, and before the run starts."""
        if self._stop_asked:
            return
        self._stop_asked = True
        self.stopped_by = reason
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already: so has the run
                self._loop.call_soon_threadsafe(self._stop.set)

    async def run(
        self,
        stop: asyncio.Event | None = None,
        duration_s: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> IngestSummary:
        """Ingest until ``stop`` is set or ``duration_s`` has passed; every message received is written or
        counted unwritten in IngestFailed. VenueError from a client at start (an unknown symbol)."""
        self._loop = asyncio.get_running_loop()
        self._stop = stop = stop or asyncio.Event()
        if self._stop_asked:
            stop.set()
        self._started = time.monotonic()
        self._writers = [
            _Writer(sink, self.max_pending, lambda: self.stop("a sink's queue was full")) for sink in self.sinks
        ]
        tasks = [asyncio.create_task(client.run(self.emit, stop)) for client in self.clients]
        watcher = asyncio.create_task(self._watch(stop, duration_s, on_progress))
        error: BaseException | None = None
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            error = next((task.exception() for task in done if task.exception() is not None), None)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await asyncio.to_thread(self._close_writers)
        if error is not None:
            raise error
        self._raise_unwritten()
        return self.summary()

    async def _watch(self, stop: asyncio.Event, duration_s: float | None, on_progress) -> None:
        before: dict[str, int] = {}
        last = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                wait = PROGRESS_EVERY_S
                if duration_s is not None:
                    wait = min(wait, max(0.0, self._started + duration_s - time.monotonic()))
                await asyncio.wait_for(stop.wait(), wait)
            if duration_s is not None and time.monotonic() - self._started >= duration_s:
                self.stopped_by = "duration"
                stop.set()
            if any(writer.failed is not None for writer in self._writers):
                self.stopped_by = "a sink failed"
                stop.set()
            now = time.monotonic()
            progress = self.progress(before, now - last)
            before, last = dict(progress.messages), now
            if on_progress is not None:
                on_progress(progress)

    def progress(self, before: dict[str, int] | None = None, interval_s: float = 1.0) -> Progress:
        messages: dict[str, int] = {}
        for client in self.clients:
            messages.update(client.stats.messages)
        before = before or {}
        rates = {name: (count - before.get(name, 0)) / max(interval_s, 1e-9) for name, count in messages.items()}
        problem = next((w.error for w in self._writers if w.error), None) or next(
            (c.stats.last_error for c in self.clients if c.stats.last_error), None
        )
        return Progress(
            time.monotonic() - self._started,
            messages,
            rates,
            sum(c.stats.reconnects for c in self.clients),
            sum(c.stats.resyncs for c in self.clients),
            max((len(w.queue) for w in self._writers), default=0),
            problem,
        )

    def _close_writers(self) -> None:
        for writer in self._writers:
            writer.close()

    def _raise_unwritten(self) -> None:
        problems = []
        for writer in self._writers:
            lost = len(writer.queue) + writer.overflowed
            if lost or writer.failed is not None:
                problems.append(
                    f"{writer.error or 'it did not keep up'}: {lost:,} received messages not written to "
                    f"{writer.sink.name}"
                    + (f" ({writer.overflowed:,} past the bound of {self.max_pending:,})" if writer.overflowed else "")
                )
        if problems:
            raise IngestFailed("; ".join(problems))

    def summary(self) -> IngestSummary:
        progress = self.progress()
        files, topics = [], {}
        for sink in self.sinks:
            files += [str(sink.folder / name) for name in sorted(getattr(sink, "written", {}))]
            topics.update(getattr(sink, "topics", {}))
        return IngestSummary(
            progress.seconds,
            dict(sorted(progress.messages.items())),
            progress.reconnects,
            progress.resyncs,
            [sink.name for sink in self.sinks],
            {writer.sink.name: writer.written for writer in self._writers},
            files,
            topics,
            self.stopped_by,
            next((c.stats.last_error for c in self.clients if c.stats.last_error), None),
        )


def ingest(
    clients: Sequence[Client],
    sinks: Sequence[Sink],
    duration_s: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    max_pending: int = MAX_PENDING,
    handle_signals: bool = True,
) -> IngestSummary:
    """Run the ingester on a new event loop in this thread until ``duration_s`` has passed, or SIGINT or
    SIGTERM (``handle_signals``, main thread only) asks it to stop."""
    ingester = Ingester(clients, sinks, max_pending)

    async def main() -> IngestSummary:
        loop = asyncio.get_running_loop()
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, ingester.stop, signal.Signals(signum).name)
        try:
            return await ingester.run(duration_s=duration_s, on_progress=on_progress)
        finally:
            if handle_signals:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)

    return asyncio.run(main())
