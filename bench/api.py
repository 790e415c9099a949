"""API load benchmark: the API serves a filled store in its own processes (``--workers``); this process
drives it on loopback and reports throughput, latency percentiles and errors, at a fixed request rate
(``--rate``) or, by default, searching for the highest rate it answers with no error and p99 under
``--p99-ms`` (doubling from ``--start-rate`` until a rate fails, then halving the gap between the best
passing and the lowest failing rate until it is under 5% of the rate).

    python -m bench.api [--rate 500] [--duration 30] [--workers N] [--store URL | --recording PATH] [--json]

The load is open-loop: request k is due at start + k / rate whatever happened to the earlier ones, on as
many keep-alive connections as needed, and its latency counts from when it was due, so a slow server
cannot lower the rate or hide its queueing (no coordinated omission). Requests alternate between the
latest-prediction and the book endpoints of one instrument. The API runs with its rate limiter on, set
to twice the highest offered rate so that it is exercised but never refuses. The load generator shares
the machine's cores with the server: its own CPU use is measured and reported beside the server's.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from quantumflow.settings import shared_data_dir
from store import open_store

SHARED_RECORDING = shared_data_dir() / "binance" / "spot_btcusdt_20240808.gz"
REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 512
SEARCH_PRECISION = 0.05  # the search stops when the gap between passing and failing is under this share
PLACEHOLDER_HORIZONS = ("10", "1s")


@dataclass
class EndpointFigures:
    endpoint: str
    sent: int
    ok: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


@dataclass
class ApiBenchResult:
    rate: float
    duration_s: float
    throughput: float  # answers a second over the measured window
    instrument: str
    store: str
    predictions: str  # where the predictions served came from
    connections: int
    server_cpu: float  # cores the server processes used while measured (1.0: one core)
    endpoints: list[EndpointFigures]
    error_kinds: dict[str, int]
    workers: int = 1
    client_cpu: float = 0.0  # cores the load generator (this process) used while measured

    def to_dict(self) -> dict:
        return asdict(self)

    def passes(self, p99_ms: float) -> bool:
        """No error, and p99 over every request under ``p99_ms``."""
        total = self.endpoints[-1]
        return total.errors == 0 and total.ok > 0 and total.p99_ms < p99_ms


@dataclass
class ApiRateSearch:
    p99_ms: float
    best: ApiBenchResult | None  # the highest passing rate, None if even the first failed
    steps: list[ApiBenchResult]

    def to_dict(self) -> dict:
        return asdict(self)


def run_api_bench(
    rate: float = 500.0,
    duration_s: float = 30.0,
    warmup_s: float = 2.0,
    store_url: str | None = None,
    recording: Path | None = None,
    workers: int = 1,
) -> ApiBenchResult:
    """Fill a store (unless one is given), serve it from other processes, load it at ``rate``, and measure."""
    with served(store_url, recording, workers, rate) as load:
        return load(rate, duration_s, warmup_s)


def search_api_rate(
    p99_ms: float = 10.0,
    start_rate: float = 1000.0,
    max_rate: float = 50000.0,
    duration_s: float = 10.0,
    warmup_s: float = 2.0,
    store_url: str | None = None,
    recording: Path | None = None,
    workers: int = 1,
    progress: Callable[[ApiBenchResult], None] | None = None,
) -> ApiRateSearch:
    """The highest offered rate (from ``start_rate`` up to ``max_rate``) answered with no error and p99 under
    ``p99_ms``, by doubling and then bisection, on one server."""
    steps: list[ApiBenchResult] = []
    best: ApiBenchResult | None = None
    low, high = 0.0, None  # best passing, lowest failing
    rate = start_rate
    with served(store_url, recording, workers, max_rate) as load:
        while True:
            result = load(rate, duration_s, warmup_s)
            steps.append(result)
            if progress:
                progress(result)
            if result.passes(p99_ms):
                low, best = rate, result
            else:
                high = rate
            if high is None:
                if rate >= max_rate:
                    break
                rate = min(2 * rate, max_rate)
            elif high - low <= SEARCH_PRECISION * high:
                break
            else:
                rate = round((low + high) / 2 if low else high / 2)
            if rate < 1:
                break
    return ApiRateSearch(p99_ms, best, steps)


@contextmanager
def served(
    store_url: str | None, recording: Path | None, workers: int, max_rate: float
) -> Iterator[Callable[[float, float, float], ApiBenchResult]]:
    """A server on a filled store; yields ``load(rate, duration_s, warmup_s)``, which measures one rate."""
    with tempfile.TemporaryDirectory(prefix="qf-api-bench-") as folder:
        own_store = store_url is None
        if own_store:
            store_url = f"sqlite:///{Path(folder) / 'bench.db'}"
            fill_store(store_url, recording, Path(folder))
        instrument, predictions = prepare_predictions(store_url, may_write_placeholders=own_store)
        port = free_port()
        server = start_server(store_url, port, max_rate, workers)
        paths = [f"/v1/predictions/{instrument}/latest", f"/v1/book/{instrument}?levels=10"]

        def load(rate: float, duration_s: float, warmup_s: float) -> ApiBenchResult:
            cpu_before, client_before = tree_cpu_s(server.pid), time.process_time()
            gc.disable()  # the client's collections of its growing sample list would make requests late
            try:
                with asyncio.Runner(loop_factory=_fast_loop()) as runner:
                    samples, connections = runner.run(drive("127.0.0.1", port, paths, rate, duration_s, warmup_s))
            finally:
                gc.enable()
            elapsed = duration_s + warmup_s
            cpu = (tree_cpu_s(server.pid) - cpu_before) / elapsed
            client = (time.process_time() - client_before) / elapsed
            result = summarize(samples, paths, rate, duration_s, instrument, store_url, predictions, connections, cpu)
            result.workers, result.client_cpu = workers, client
            return result

        try:
            yield load
        finally:
            server.terminate()
            server.wait(10)


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def fill_store(url: str, recording: Path | None, folder: Path) -> None:
    from dataflows.run import run_flow
    from dataflows.run_settings import RunSettings

    if recording is None:
        recording = SHARED_RECORDING
        if not recording.is_file():
            from simulator import simulate

            recording = folder / "simulated"
            simulate(recording, seed=7, minutes=2)
    # with data/models, if any
    run_flow(RunSettings((recording,), store=url, online_state_dir=folder / "online_state", fresh=True))


def prepare_predictions(url: str, may_write_placeholders: bool) -> tuple[str, str]:
    """The instrument to load (the one with the most book rows) and where its predictions come from. With no
    predictions stored (no trained models when the flow ran) in the benchmark's own store, placeholder rows
    are written, one per feature row and horizon, so the endpoint serves rows of the real shape from a table
    of realistic size; a store the user gave is only read."""
    store = open_store(url)
    with store.reader() as reader:
        books = {instrument: reader.count("book", instrument) for instrument in reader.instruments()}
        if not any(books.values()):
            raise ValueError(f"the store {url} has no book rows; replay a recording into it first")
        instrument = max(books, key=books.__getitem__)
        if reader.latest_predictions(instrument):
            return instrument, "stored"
        if not may_write_placeholders:
            raise ValueError(
                f"the store {url} has no predictions for {instrument}; train models and replay into it, "
                "or leave out --store and the benchmark fills a store of its own"
            )
        events = reader.range("features", instrument, 0, 2**63 - 1, [], limit=100_000)
    probs = json.dumps({"placeholder": [0.25, 0.5, 0.25]})
    rows = [
        (
            instrument,
            e["ts"],
            e["seq"],
            h,
            None,
            0.25,
            0.5,
            0.25,
            0,
            0.5,
            probs,
            '{"placeholder": 1.0}',
            None,
            None,
            None,
        )
        for e in events
        for h in PLACEHOLDER_HORIZONS
    ]
    with store.writer() as writer:
        writer.write("predictions", rows)
    return instrument, f"placeholders ({len(rows):,} rows written: the store had none)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, rate: float, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "QF_API_RATE_LIMIT": f"{max(1, round(2 * rate))}/s"}
    command = [sys.executable, "-m", "api.cli", "--port", str(port), "--store", url, "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API server exited: {server.stderr.read().decode()[-2000:]}")
        try:  # an answer, not only a connection: with several processes the port opens before they serve
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1"):
                    return server
        except OSError:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("the API server did not start within 60 s")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live descendants (the server's worker processes)."""
    total = process_cpu_s(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(tree_cpu_s(int(child)) for child in children)


async def drive(
    host: str, port: int, paths: list[str], rate: float, duration_s: float, warmup_s: float
) -> tuple[list[tuple[int, float, float, str | None]], int]:
    """Send requests at ``rate`` for warmup + duration; (path index, due time, latency s, error) per
    request due after the warm-up, and the number of connections opened. One request at a time per
    keep-alive connection, on as many as needed; no task per request, so that the client costs little
    of the CPU it shares with the server."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths]
    idle: list[Connection] = []
    busy: set[Connection] = set()
    samples: list[tuple[int, float, float, str | None]] = []
    opened = 0
    start = clock() + 0.05
    measured_from = start + warmup_s
    total = int((warmup_s + duration_s) * rate)

    def done(connection: Connection, which: int, due: float, error: str | None) -> None:
        busy.discard(connection)
        if error is None:
            idle.append(connection)
        if due >= measured_from:
            samples.append((which, due, clock() - due, error))

    async def connect_and_send(which: int, due: float) -> None:
        try:
            _, connection = await loop.create_connection(lambda: Connection(done, clock), host, port)
        except OSError as error:
            done_failed(which, due, type(error).__name__)
            return
        busy.add(connection)
        connection.send(requests[which], which, due)

    def done_failed(which: int, due: float, error: str) -> None:
        if due >= measured_from:
            samples.append((which, due, clock() - due, error))

    pending_connects: set[asyncio.Task] = set()
    for k in range(total):
        due = start + k / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
            now = clock()
            for connection in [c for c in busy if now - c.due > REQUEST_TIMEOUT_S]:
                connection.fail("TimeoutError")
        which = k % len(paths)
        while idle and idle[-1].closed:  # closed by the server (idle past its keep-alive timeout)
            idle.pop()
        if idle:
            connection = idle.pop()
            busy.add(connection)
            connection.send(requests[which], which, due)
        elif opened >= MAX_CONNECTIONS:
            done_failed(which, due, "connection cap reached")
        else:
            opened += 1
            task = loop.create_task(connect_and_send(which, due))
            pending_connects.add(task)
            task.add_done_callback(pending_connects.discard)
    deadline = clock() + REQUEST_TIMEOUT_S
    while (busy or pending_connects) and clock() < deadline:
        await asyncio.sleep(0.01)
    for connection in list(busy):
        connection.fail("TimeoutError")
    for connection in idle:
        connection.close()
    return samples, opened


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight; tells ``done`` how it ended."""

    def __init__(self, done: Callable[[Connection, int, float, str | None], None], clock: Callable[[], float]):
        self.done = done
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.which, self.due = -1, 0.0
        self.in_flight = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, which: int, due: float) -> None:
        self.which, self.due, self.in_flight = which, due, True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        if at < 0:
            self.fail("ValueError")  # a response without Content-Length
            return
        length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        self.buffer = self.buffer[end + 4 + length :]
        self.in_flight = False
        self.done(self, self.which, self.due, None if status == 200 else f"HTTP {status}")

    def fail(self, error: str) -> None:
        self.close()
        if self.in_flight:
            self.in_flight = False
            self.done(self, self.which, self.due, error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.in_flight:
            self.in_flight = False
            self.done(self, self.which, self.due, "ConnectionResetError")


def summarize(
    samples: list[tuple[int, float, float, str | None]],
    paths: list[str],
    rate: float,
    duration_s: float,
    instrument: str,
    store: str,
    predictions: str,
    connections: int,
    server_cpu: float,
) -> ApiBenchResult:
    figures = []
    for which, path in [*enumerate(paths), (None, "all")]:
        mine = [s for s in samples if which is None or s[0] == which]
        ms = np.array([s[2] for s in mine if s[3] is None]) * 1e3
        q = np.percentile(ms, [50, 90, 99, 99.9]) if len(ms) else [np.nan] * 4
        label = path.replace(instrument, "{instrument}")
        errors = sum(s[3] is not None for s in mine)
        figures.append(
            EndpointFigures(label, len(mine), len(ms), errors, *map(float, q), float(ms.max()) if len(ms) else np.nan)
        )
    kinds: dict[str, int] = {}
    for s in samples:
        if s[3] is not None:
            kinds[s[3]] = kinds.get(s[3], 0) + 1
    answered = sum(s[3] is None for s in samples)
    return ApiBenchResult(
        rate, duration_s, answered / duration_s, instrument, store, predictions, connections, server_cpu, figures, kinds
    )


def print_result(result: ApiBenchResult) -> None:
    print(
        f"API load: {result.rate:g} requests/s for {result.duration_s:g} s, open loop, on {result.instrument} "
        f"(store {result.store}; predictions: {result.predictions})"
    )
    print(
        f"{'endpoint':44} {'sent':>7} {'ok':>7} {'errors':>6} {'p50 ms':>7} "
        f"{'p90':>6} {'p99':>6} {'p99.9':>6} {'max':>6}"
    )
    for f in result.endpoints:
        print(
            f"{f.endpoint:44} {f.sent:7,} {f.ok:7,} {f.errors:6,} {f.p50_ms:7.2f} {f.p90_ms:6.2f} {f.p99_ms:6.2f} "
            f"{f.p999_ms:6.2f} {f.max_ms:6.1f}"
        )
    kinds = ", ".join(f"{k} {n}" for k, n in result.error_kinds.items()) or "none"
    print(
        f"throughput {result.throughput:,.1f} answers/s; errors: {kinds}; {result.connections} connections; "
        f"server ({processes_text(result.workers)}) CPU {100 * result.server_cpu:.0f}% of one core, "
        f"load generator {100 * result.client_cpu:.0f}%"
    )


def processes_text(n: int) -> str:
    return f"{n} process" if n == 1 else f"{n} processes"


def step_line(result: ApiBenchResult, p99_ms: float) -> str:
    total = result.endpoints[-1]
    verdict = "pass" if result.passes(p99_ms) else "FAIL"
    return (
        f"  {result.rate:8,.0f}/s  {verdict}  answered {result.throughput:8,.1f}/s  errors {total.errors:6,}  "
        f"p50 {total.p50_ms:7.2f} ms  p99 {total.p99_ms:8.2f} ms  server CPU {100 * result.server_cpu:4.0f}%  "
        f"load generator {100 * result.client_cpu:3.0f}%"
    )


def print_search(search: ApiRateSearch) -> None:
    if search.best is None:
        print(f"API load: no rate tried was answered with no error and p99 under {search.p99_ms:g} ms")
        return
    print(
        f"API load: highest rate with no error and p99 under {search.p99_ms:g} ms: {search.best.rate:,.0f} "
        f"requests/s ({len(search.steps)} rates tried); at that rate:"
    )
    print_result(search.best)


def main(
    rate: Annotated[
        float | None,
        typer.Option(min=1, help="Requests a second, offered whatever the answers take (default: search the highest)."),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(min=1, help="Seconds measured per rate, after the warm-up (default 30, searching 10)."),
    ] = None,
    warmup: Annotated[float, typer.Option(min=0, help="Seconds of load before measuring.")] = 2,
    p99_ms: Annotated[float, typer.Option(min=0.1, help="The p99 (ms) a rate must stay under when searching.")] = 10,
    start_rate: Annotated[float, typer.Option(min=1, help="The first rate the search tries.")] = 1000,
    max_rate: Annotated[float, typer.Option(min=1, help="The highest rate the search tries.")] = 50000,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Server processes (default: one per core, at most 8).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(help="A filled store with predictions to serve, only read (default: fill a temporary one)."),
    ] = None,
    recording: Annotated[
        Path | None, typer.Option(help="Recording to fill the store with (default: the Binance spot one, or simulate).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Load the API from this process, at a fixed request rate or searching for the highest one that keeps
    p99 under --p99-ms with no error, and print throughput, latency and errors."""
    from api.settings import default_workers

    processes = workers or default_workers()
    if rate is not None:
        result = run_api_bench(rate, duration or 30, warmup, store, recording, processes)
        if as_json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            print_result(result)
        return
    progress = None if as_json else (lambda step: print(step_line(step, p99_ms), flush=True))
    if not as_json:
        print(
            f"API load: searching the highest rate with no error and p99 under {p99_ms:g} ms "
            f"({processes_text(processes)})"
        )
    search = search_api_rate(
        p99_ms, start_rate, max_rate, duration or 10, warmup, store, recording, processes, progress
    )
    if as_json:
        print(json.dumps(search.to_dict(), indent=2))
    else:
        print_search(search)


if __name__ == "__main__":
    typer.run(main)
