"""The ``broker`` and ``publish`` commands: a Kafka broker for development, and recordings into the
raw log (``dataflows.raw_log``)."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from cli.models import FeedOption

KafkaOption = Annotated[
    str, typer.Option("--kafka", help="The Kafka bootstrap address, HOST:PORT (e.g. from 'quantumflow broker').")
]


def broker_command(
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Bootstrap port on 127.0.0.1: a relay to the cluster's own port, which librdkafka picks "
            "(clients connect to that one, also on loopback, after their first metadata request).",
        ),
    ] = None,
) -> None:
    """Run a Kafka broker on loopback for development and tests: librdkafka's mock cluster, in memory,
    topics made on first write with 4 partitions, about the last 5 MB of each partition kept. Prints
    'bootstrap: HOST:PORT' as its first line (the cluster's own port, or 127.0.0.1:PORT with --port),
    then serves until Ctrl-C or SIGTERM. Production uses a real Kafka."""
    from dataflows.kafka_broker import MockBroker
    from dataflows.tcp_relay import LOOPBACK, TcpRelay
    from quantumflow.net import check_port

    if port is not None:
        check_port(LOOPBACK, port)  # a port in use is said before the cluster starts
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with MockBroker() as broker, contextlib.ExitStack() as relays:
        bootstrap = broker.bootstrap if port is None else relays.enter_context(TcpRelay(port, broker.bootstrap)).address
        typer.echo(f"bootstrap: {bootstrap}")
        sys.stdout.flush()
        broker.serve(stop)


def publish_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Recordings: files, or folders of them (merged by local receive time, as 'run' reads them)."
        ),
    ],
    kafka: KafkaOption,
    feed: FeedOption = None,
    speed: Annotated[
        float | None,
        typer.Option(min=0.001, help="Pace the messages at this many times real time (default: flat out)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Write recordings into the raw log: each message, byte for byte, into the topic raw.<feed>, keyed by
    its instrument's symbol, with its receive time, through an idempotent producer."""
    from dataflows.kafka_publish import publish
    from dataflows.sources import recording_paths

    total = sum(path.stat().st_size for path in recording_paths(paths))
    with tqdm(total=total, unit="B", unit_scale=True, desc="publish", disable=None, leave=False) as bar:
        summary = publish(paths, kafka, feed, speed, on_progress=lambda done: bar.update(done - bar.n))
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        _say_published(summary)
    for warning in summary.warnings:  # on stderr: --json's output stays JSON
        typer.secho(f"warning: {warning}", fg="yellow", err=True)


def _say_published(summary) -> None:
    total_messages = sum(summary.messages.values())
    per_topic = ", ".join(f"{topic} {count:,}" for topic, count in summary.messages.items())
    typer.echo(
        f"{total_messages:,} messages to {summary.bootstrap} in {summary.seconds:.1f} s "
        f"({summary.messages_per_s:,.0f}/s): {per_topic}"
        + (
            f"; {summary.dead_letters:,} bad recording lines among them, kept as dead letters"
            if summary.dead_letters
            else ""
        )
    )
