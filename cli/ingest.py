"""The ``ingest`` and ``fake-exchange`` commands: venues' live market data into recordings or the raw
log, and local venues that play recordings for tests and demos."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import UserError, bad_input, writable_folder
from exchanges.registry import EXCHANGES
from venues.registry import VENUES


def ingest_command(
    venue: Annotated[str, typer.Argument(help=f"The venue: {', '.join(VENUES)}.")],
    symbols: Annotated[str, typer.Option("--symbols", help="The venue's symbols, comma-separated: BTCUSDT,ETHUSDT.")],
    kafka: Annotated[
        str | None,
        typer.Option("--kafka", help="Write into the raw log on this Kafka broker, HOST:PORT (topic raw.<feed>)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write native recordings here: <feed>_<connection>_<YYYYmmddTHH>.gz, one per connection and hour."
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0.0, help="Stop after this many seconds (default: until Ctrl-C or SIGTERM).")
    ] = None,
    max_pending: Annotated[
        int,
        typer.Option(
            min=1, help="Messages kept in memory while a disk or broker cannot take them; past it, stop and fail."
        ),
    ] = 1_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Connect to a venue's public market data and write every message, unchanged, with its local receive
    time in ns: to recordings (--out) and/or the raw log in Kafka (--kafka). Reconnects, resyncs after gaps
    (Binance: a new REST depth snapshot, written as its own message). Ctrl-C, SIGTERM or --duration stop it
    after writing everything received; a disk or broker that fails past --max-pending exits with status 1."""
    from dataflows.ingest import ingest
    from dataflows.ingest_sinks import KafkaRawLog, RecordingFolder
    from venues.registry import client_for

    if kafka is None and out is None:
        raise UserError("nowhere to write: give --out DIR and/or --kafka HOST:PORT", 2)
    with bad_input():
        client = client_for(venue, [s for s in symbols.split(",") if s.strip()])
    sinks = []
    if out is not None:
        writable_folder(out)
        sinks.append(RecordingFolder(out))
    if kafka is not None:
        sinks.append(KafkaRawLog(kafka, max_pending))
    interactive = sys.stderr.isatty()

    def show(progress) -> None:
        if interactive:
            typer.echo("\r\033[K" + progress.line(), err=True, nl=False)

    try:
        summary = ingest([client], sinks, duration, show, max_pending)
    finally:
        if interactive:
            typer.echo("", err=True)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        _fail_if_nothing_came(summary)
        return
    counts = ", ".join(f"{name} {count:,}" for name, count in summary.messages.items())
    typer.echo(
        f"{sum(summary.messages.values()):,} messages in {summary.seconds:.1f} s{f' ({counts})' if counts else ''}; "
        f"{summary.reconnects} reconnects, {summary.resyncs} resyncs; stopped by {summary.stopped_by}"
    )
    for path in summary.files:
        typer.echo(f"  {path}")
    for topic, count in summary.topics.items():
        typer.echo(f"  {topic}: {count:,} messages")
    _fail_if_nothing_came(summary)


def _fail_if_nothing_came(summary) -> None:
    """A run that received nothing while its connections kept failing (a wrong address, no network) is a
    failure to say, not a success with an empty folder."""
    if not any(summary.messages.values()) and summary.last_error:
        raise UserError(f"nothing received in {summary.seconds:.0f} s: {summary.last_error}")


def fake_exchange_command(
    venue: Annotated[str, typer.Argument(help=f"The venue to imitate: {', '.join(EXCHANGES)}.")],
    recordings: Annotated[list[Path], typer.Argument(help="Native recordings of that venue, one symbol each.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port to serve on (0: any free one).")] = 0,
    host: Annotated[str, typer.Option(help="The address to serve on.")] = "127.0.0.1",
    speed: Annotated[
        float, typer.Option(min=0.0, help="Play at this many times real time (0: as fast as clients read).")
    ] = 1.0,
    loop: Annotated[bool, typer.Option("--loop/--no-loop", help="Start again at the end of the recordings.")] = False,
) -> None:
    """Serve a local venue that plays recordings over the venue's own protocol (websocket streams and REST
    snapshots), for demos and tests. Prints the settings that point 'quantumflow ingest' at it; Ctrl-C stops."""
    from exchanges.registry import exchange_class

    with bad_input():
        exchange = exchange_class(venue)(venue, recordings, speed=speed, loop=loop)
    try:
        exchange.start(host, port)
    except OSError as error:
        raise UserError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
    for name, value in exchange.settings().items():
        typer.echo(f"export {name}={value}")
    sys.stdout.flush()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    said_the_end = False
    try:
        while not stop.wait(0.5):
            finished = exchange.finished
            if not said_the_end and (finished.is_set() if hasattr(finished, "is_set") else finished):
                typer.echo("played to the end of the recordings: the market is quiet now (--loop plays them again)")
                said_the_end = True
    finally:
        exchange.stop()
