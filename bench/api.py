"""API load benchmark: the API serves a filled store in one process; this process drives it at a fixed
request rate on loopback and reports throughput, latency percentiles and errors.

    python -m bench.api [--rate 500] [--duration 30] [--store URL | --recording PATH] [--json]

The load is open-loop: request k is due at start + k / rate whatever happened to the earlier ones, on as
many keep-alive connections as needed, and its latency counts from when it was due, so a slow server
cannot lower the rate or hide its queueing (no coordinated omission). Requests alternate between the
latest-prediction and the book endpoints of one instrument. The API runs with its rate limiter on, set
to twice the offered rate so that it is exercised but never refuses.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    server_cpu: float  # share of one core the server process used while measured
    endpoints: list[EndpointFigures]
    error_kinds: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


def run_api_bench(
    rate: float = 500.0,
    duration_s: float = 30.0,
    warmup_s: float = 2.0,
    store_url: str | None = None,
    recording: Path | None = None,
) -> ApiBenchResult:
    """Fill a store (unless one is given), serve it from a second process, load it, and measure."""
    with tempfile.TemporaryDirectory(prefix="qf-api-bench-") as folder:
        own_store = store_url is None
        if own_store:
            store_url = f"sqlite:///{Path(folder) / 'bench.db'}"
            fill_store(store_url, recording, Path(folder))
        instrument, predictions = prepare_predictions(store_url, may_write_placeholders=own_store)
        port = free_port()
        server = start_server(store_url, port, rate)
        try:
            paths = [f"/v1/predictions/{instrument}/latest", f"/v1/book/{instrument}?levels=10"]
            cpu_before = process_cpu_s(server.pid)
            with asyncio.Runner(loop_factory=_fast_loop()) as runner:
                samples, connections = runner.run(drive("127.0.0.1", port, paths, rate, duration_s, warmup_s))
            cpu = (process_cpu_s(server.pid) - cpu_before) / (duration_s + warmup_s)
        finally:
            server.terminate()
            server.wait(10)
    return summarize(samples, paths, rate, duration_s, instrument, store_url, predictions, connections, cpu)


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


def start_server(url: str, port: int, rate: float) -> subprocess.Popen:
    env = {**os.environ, "QF_API_RATE_LIMIT": f"{max(1, round(2 * rate))}/s"}
    command = [sys.executable, "-m", "api.cli", "--port", str(port), "--store", url]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
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


async def drive(
    host: str, port: int, paths: list[str], rate: float, duration_s: float, warmup_s: float
) -> tuple[list[tuple[int, float, float, str | None]], int]:
    """Send requests at ``rate`` for warmup + duration; (path index, due time, latency s, error) per
    request due after the warm-up, and the number of connections opened."""
    clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths]
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened = 0
    samples: list[tuple[int, float, float, str | None]] = []
    tasks = set()
    start = clock() + 0.05
    total = int((warmup_s + duration_s) * rate)

    async def one(k: int, due: float) -> None:
        nonlocal opened
        which = k % len(paths)
        error = None
        try:
            while idle and idle[-1][0].at_eof():  # closed by the server (idle past its keep-alive timeout)
                idle.pop()[1].close()
            if idle:
                connection = idle.pop()
            else:
                if opened >= MAX_CONNECTIONS:
                    raise ConnectionError("connection cap reached")
                opened += 1
                connection = await asyncio.open_connection(host, port)
            status = await asyncio.wait_for(exchange(connection, requests[which]), REQUEST_TIMEOUT_S)
            idle.append(connection)
            if status != 200:
                error = f"HTTP {status}"
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
            error = type(e).__name__
        if due - start >= warmup_s:
            samples.append((which, due, clock() - due, error))

    for k in range(total):
        due = start + k / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(k, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return samples, opened


async def exchange(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes) -> int:
    """One HTTP/1.1 request on a keep-alive connection; the response's status (its body is read and dropped)."""
    reader, writer = connection
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), None)
    if length is None:
        raise ValueError("a response without Content-Length")
    await reader.readexactly(length)
    return status


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
        f"server CPU {100 * result.server_cpu:.0f}% of one core"
    )


def main(
    rate: Annotated[float, typer.Option(min=1, help="Requests a second, offered whatever the answers take.")] = 500,
    duration: Annotated[float, typer.Option(min=1, help="Seconds measured (after the warm-up).")] = 30,
    warmup: Annotated[float, typer.Option(min=0, help="Seconds of load before measuring.")] = 2,
    store: Annotated[
        str | None,
        typer.Option(help="A filled store with predictions to serve, only read (default: fill a temporary one)."),
    ] = None,
    recording: Annotated[
        Path | None, typer.Option(help="Recording to fill the store with (default: the Binance spot one, or simulate).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Load the API at a fixed request rate from this process and print throughput, latency and errors."""
    result = run_api_bench(rate, duration, warmup, store, recording)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print_result(result)


if __name__ == "__main__":
    typer.run(main)
