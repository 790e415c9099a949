"""The ``quantumflow`` command."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from api.cli import api_command
from cli.backtest import backtest_command
from cli.errors import ReportingGroup, UserError, bad_input, writable_file, writable_folder
from cli.ingest import fake_exchange_command, ingest_command
from cli.kafka import broker_command, publish_command
from cli.models import FeedOption, evaluate_command, train_command, train_default_models
from cli.report import report_command
from cli.tuning import tune_command
from cli.volatility import vol_evaluate_command
from dashboards.cli import dashboard_app
from dataflows.recordings import open_recording
from dataflows.replay import ReplaySummary, replay
from operators.feeds import FEEDS
from quantumflow.settings import micro_price_path, models_dir, shared_data_dir, simulated_recording_dir

app = typer.Typer(
    cls=ReportingGroup,
    help="QuantumFlow: exact limit order books from exchange streams, microstructure features and predictions.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an internal error, show the traceback instead of logging it.")
    ] = False,
) -> None:
    ReportingGroup.debug = debug


app.add_typer(dashboard_app, name="dashboard")
app.command("api")(api_command)
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("tune")(tune_command)
app.command("vol-evaluate")(vol_evaluate_command)
app.command("report")(report_command)
app.command("backtest")(backtest_command)
app.command("broker")(broker_command)
app.command("publish")(publish_command)
app.command("ingest")(ingest_command)
app.command("fake-exchange")(fake_exchange_command)
console = Console(width=shutil.get_terminal_size((140, 24)).columns, soft_wrap=True)  # a line stays whole when piped

DEFAULT_BENCH_RECORDING = shared_data_dir() / "binance" / "usdm_btcusdt_20240808.gz"

DEFAULT_SIMULATED_MINUTES = 10
DEFAULT_SIMULATION_SEED = 7


@app.command("replay")
def replay_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Recordings: files (native .gz, cryptofeed capture, or LOBSTER csv), or folders of them "
            "(merged by local receive time)."
        ),
    ],
    feed: FeedOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the summary, with each final top-10 book, as JSON here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of tables.")] = False,
) -> None:
    """Rebuild every book in the recordings and summarise: events by type, resyncs, dead letters, final tops.
    Bad lines and a file cut off mid-write are dead letters; the replay goes on."""
    from dataflows.sources import recording_paths

    recordings = [open_recording(path, feed) for path in recording_paths(paths)]
    if out is not None:
        writable_file(out, "--out")
    total = sum(r.size for r in recordings)
    with tqdm(total=total, unit="B", unit_scale=True, desc="replay", disable=None, leave=False) as bar:
        summary = replay(recordings, on_progress=bar.update)
    document = summary.to_dict()
    if out is not None:
        out.write_text(json.dumps(document, indent=2))
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_summary(summary)
        if out is not None:
            console.print(f"summary written to {out}")


@app.command("bench")
def bench_command(
    path: Annotated[Path, typer.Argument(help="Recording to replay.")] = DEFAULT_BENCH_RECORDING,
    feed: FeedOption = None,
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each pass; the median is reported.")] = 3,
    models: Annotated[
        Path | None,
        typer.Option(help="Checkpoints whose inference to time (default: $QF_MODELS_DIR; none: small ones trained)."),
    ] = None,
    with_models: Annotated[bool, typer.Option("--models-cost/--no-models-cost", help="Also time the models.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure throughput on a recording, each pass beside decoding it alone: decode only, the flow's parse
    step, parse + sync + book, the flow's keyed steps in this process (with features), the flow into SQLite,
    and the SQLite writes of the flow's rows alone; then the models' inference cost per event."""
    from bench.books import bench_books, each_warning_once
    from bench.hft_books import PASSES
    from bench.models import bench_models
    from models.checkpoints import require_checkpoints

    if with_models and models is not None:
        require_checkpoints(models)  # before the passes, not after minutes of them
    with each_warning_once():
        result = bench_books(path, feed, repeats)
        cost = bench_models(path, models, feed) if with_models else None
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "models": cost and cost.to_dict()}, indent=2))
        return
    console.print(f"recording: {result.recording} ({result.messages:,} messages, {result.events:,} events)")
    runs = "one run" if result.repeats == 1 else f"the median of {result.repeats} runs"
    console.print(f"{runs} of each pass; every pass reads the file from disk; C passes: {PASSES[result.compiled]}")
    rows = _bench_rows(result)
    name_width, rate_width = (max(len(row[i]) for row in rows) for i in (0, 1))
    for name, rate, ratio in rows:
        console.print(f"  {name:<{name_width}}  {rate:<{rate_width}}  {ratio:5.2f} x decode-only", highlight=False)
    console.print(
        f"  whole flow: {result.feature_rows:,} feature rows; latency read -> row committed "
        f"p50 {result.flow_latency_p50_ms:.1f} ms, p99 {result.flow_latency_p99_ms:.1f} ms"
    )
    console.print(
        f"  decoding and storing alone would reach {result.flow_ceiling_ratio:.2f} x decode-only: "
        "no flow into SQLite does better on this machine"
    )
    if cost is not None:
        rows = ("rows", "rows written")  # not parts of the predictor
        parts = ", ".join(f"{part} {us:,.1f}" for part, us in cost.parts_us_per_event.items() if part not in rows)
        built, written = (cost.parts_us_per_event.get(name, math.nan) for name in rows)
        console.print(
            f"models ({cost.models}, {cost.horizons} horizons), per predicted event: predictor "
            f"{cost.total_us_per_event:,.0f} µs; by part (µs): {parts}; besides it, prediction rows built "
            f"{built:,.1f}, written to SQLite {written:,.1f} ({cost.predicted_events:,} events)"
        )
        console.print(
            f"flow with predictions, 1 worker: {cost.flow_events_per_s:,.0f} events/s, latency read -> rows "
            f"committed p50 {cost.flow_latency_p50_ms:.1f} ms, p99 {cost.flow_latency_p99_ms:.1f} ms, "
            f"{cost.prediction_rows:,} prediction rows"
        )
        console.print(
            f"  without predictions {cost.feature_flow_events_per_s:,.0f} events/s; with the networks and the "
            f"prediction rows' writes alone added to it, at most {cost.ceiling_events_per_s:,.0f} events/s"
        )


def _bench_rows(result) -> list[tuple[str, str, float]]:
    """(pass, rate, ratio to decode-only) for each of ``bench_books``'s passes."""

    def rate(messages: float, events: float) -> str:
        return f"{messages:,.0f} messages/s ({events:,.0f} events/s)"

    return [
        ("decode only: read + JSON parse", f"{result.decode_only_msgs_per_s:,.0f} messages/s", 1.0),
        (
            "parse: read + the flow's parse step (events by instrument)",
            rate(result.parse_msgs_per_s, result.parse_events_per_s),
            result.parse_ratio,
        ),
        (
            "book: parse + each instrument's sync and book",
            rate(result.sync_book_msgs_per_s, result.sync_book_events_per_s),
            result.sync_book_ratio,
        ),
        ("keyed steps: book + features", rate(result.book_msgs_per_s, result.book_events_per_s), result.ratio),
        (
            "whole flow, 1 Bytewax worker: keyed steps + SQLite",
            f"{result.flow_events_per_s:,.0f} events/s",
            result.flow_ratio,
        ),
        (
            "store only: the flow's rows, built beforehand, into SQLite",
            f"{result.store_events_per_s:,.0f} events/s",
            result.store_ratio,
        ),
    ]


@app.command("run")
def run_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Recordings to replay: files, or folders of them (merged by local receive time). "
            "None: the simulated recording in data/simulated, made first if missing.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option("-w", "--workers", min=1, help="Bytewax workers (threads).")] = 1,
    store: Annotated[
        str | None,
        typer.Option(help="Store URL: sqlite:///PATH or questdb://HOST[:PORT]. Default: $QF_STORE, else data/."),
    ] = None,
    feed: FeedOption = None,
    speed: Annotated[
        float | None, typer.Option(min=0.001, help="Pace the replay at this many times real time (default: flat out).")
    ] = None,
    micro_price: Annotated[
        Path | None,
        typer.Option(help="Micro-price tables from 'quantumflow micro-price' (default: $QF_MICRO_PRICE or data/)."),
    ] = None,
    batch: Annotated[
        int,
        typer.Option(
            min=1,
            max=100_000,
            help="Most messages a batch: fewer have less latency; far more than the default is slower and "
            "holds more memory.",
        ),
    ] = 1_000,
    models: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoints from 'quantumflow train' (default: $QF_MODELS_DIR, else data/models; "
            "with none there, no predictions unless the recording is the simulated default)."
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Start the online learner and ensemble from the checkpoints, not the saved state.")
    ] = False,
    recovery: Annotated[
        Path | None,
        typer.Option(
            help="Recovery folder (made on first use): the flow snapshots its state there, and a run killed "
            "is resumed from its last snapshot by the same command."
        ),
    ] = None,
    snapshot_interval: Annotated[
        float,
        typer.Option(min=0.01, help="With --recovery, seconds between snapshots (a resumed run redoes at most that)."),
    ] = 1.0,
    kafka: Annotated[
        str | None,
        typer.Option(
            help="Read the raw topics of the Kafka broker at this bootstrap address (HOST:PORT) instead of recordings."
        ),
    ] = None,
    topics: Annotated[
        str | None,
        typer.Option(help="With --kafka: the raw topics to read, comma-separated (default: every raw.<feed> topic)."),
    ] = None,
    stop_at_end: Annotated[
        bool,
        typer.Option(
            "--stop-at-end", help="With --kafka: stop at the end offsets the topics had at the start (default: tail)."
        ),
    ] = False,
    predictions_topic: Annotated[
        str | None,
        typer.Option(help="With --kafka: also send each prediction row, as JSON, to this topic there."),
    ] = None,
    live: Annotated[
        str | None,
        typer.Option(
            help="Read these instruments live from their venues instead of recordings, comma-separated "
            "VENUE:SYMBOL (binance, binance_usdm, coinbase), e.g. binance:BTCUSDT,coinbase:BTC-USD.",
        ),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(help="With --live: also write what the venues send to this folder, as recordings to replay."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="With --live: stop after this many seconds (default: Ctrl-C).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Replay recordings, read the raw log in Kafka, or read the venues live, through the predict flow
    (parse, sync, books, features, predictions) into the store. With none of them, simulate a recording,
    and train small models on it if there are none."""
    from dataflows.run import run_flow
    from dataflows.run_settings import RunSettings
    from dataflows.sources import recording_paths
    from models.checkpoints import has_checkpoints
    from store import open_store

    if kafka is None and (topics or stop_at_end or predictions_topic):
        raise UserError("--topics, --stop-at-end and --predictions-topic go with --kafka", 2)
    if kafka is not None and (paths or feed or speed):
        raise UserError("--kafka reads the raw log instead of recordings: no recordings, --feed or --speed", 2)
    if predictions_topic is not None:
        from dataflows.kafka import check_topic_name

        check_topic_name(predictions_topic)
    if live is None and (record is not None or duration is not None):
        raise UserError("--record and --duration go with --live", 2)
    if live is not None and (paths or feed or speed or kafka):
        raise UserError("--live reads the venues instead of recordings: no recordings, --feed, --speed or --kafka", 2)
    live_keys = () if live is None else tuple(key.strip() for key in live.split(",") if key.strip())
    if live is not None:
        from dataflows.live_source import venue_symbols

        with bad_input():
            venue_symbols(live_keys)
    if record is not None:
        writable_folder(record)
    if paths:
        recording_paths(paths)  # a missing recording is said before anything is made
    target = open_store(store)
    target.check()  # before simulating or training anything
    if not paths and kafka is None and live is None:
        paths = [_simulated_recording()]
        if models is None and not has_checkpoints(models_dir()):
            train_default_models(paths[0], Console(stderr=True) if as_json else console)
    settings = RunSettings(
        tuple(paths or ()),
        store=store,
        feed=feed,
        speed=speed,
        micro_price=micro_price,
        batch_messages=batch,
        models=models,
        fresh=fresh,
        workers=workers,
        recovery=recovery,
        snapshot_interval_s=snapshot_interval,
        kafka=kafka,
        topics=None if topics is None else tuple(name.strip() for name in topics.split(",") if name.strip()),
        stop_at_end=stop_at_end,
        predictions_topic=predictions_topic,
        live=live_keys,
        record_to=record,
        duration_s=duration,
    )
    said = Console(stderr=True) if as_json else console

    def warn(message: str) -> None:  # as it happens: a live run may go on for days
        said.print(f"warning: {message}", style="yellow", markup=False, highlight=False)

    with _progress_bar(settings) as on_progress:
        summary = run_flow(settings, on_progress=on_progress, on_warning=warn)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    rows = summary.rows
    console.print(
        f"{summary.events_in:,} events in {summary.seconds:.1f} s ({summary.events_per_s:,.0f} events/s, "
        f"{summary.workers} worker{'s' if summary.workers > 1 else ''}); latency "
        f"{'read' if kafka is None else 'published'} -> feature row stored "
        f"p50 {_ms(summary.latency_p50_ms)}, p99 {_ms(summary.latency_p99_ms)}"
    )
    console.print(
        f"written: {rows.get('features', 0):,} feature rows, {rows.get('book', 0):,} book rows, "
        f"{rows.get('trades', 0):,} trades, {rows.get('resyncs', 0):,} resyncs, "
        f"{rows.get('dead_letters', 0):,} dead letters ({summary.decoder_errors:,} of them decoder errors), "
        f"{rows.get('predictions', 0):,} prediction row writes "
        f"(when made, and again when their label matures, once if in the same batch); "
        f"run {summary.run_id} into {target.url}"
    )
    _warn_decoder_errors(summary.decoder_errors)
    if not rows.get("predictions") and models is None and not has_checkpoints(models_dir()):
        console.print(f"no predictions: no trained models in {models_dir()} (make them with 'quantumflow train')")
    if live is not None:
        console.print(
            f"venues: {summary.reconnects} reconnects, {summary.venue_resyncs} snapshots asked for again after a gap"
            + (f"; what they sent is in {record}" if record is not None else "")
        )
    if summary.stopped:
        resume = f"the same command resumes from {recovery}" if recovery else "rows are upserted: run again safely"
        if live is not None:
            resume = f"run {record} to replay it" if record is not None else "--record DIR keeps it for a replay"
        console.print(f"stopped by {summary.stopped}: every row of what was read is committed; {resume}")
    if summary.kafka_errors:
        console.print(
            f"warning: Kafka errors: {summary.kafka_errors:,} (in the log file); the last: {summary.last_kafka_error}",
            style="yellow",
            markup=False,
            highlight=False,
        )
    if summary.lost_messages and not rows.get("features"):
        from dataflows.kafka_broker import MOCK_PARTITION_BYTES

        console.print(
            f"NO FEATURE ROWS: {summary.lost_messages:,} messages had left the Kafka log before this run read them, "
            "the head of the log where the book snapshots are, and no book starts without one; publish the "
            "recordings again to a broker that keeps them ('quantumflow broker', librdkafka's mock cluster, keeps "
            f"about {MOCK_PARTITION_BYTES // 2**20} MB a partition; a real Kafka what its retention settings say)",
            style="bold red",
            markup=False,
            highlight=False,
        )


@contextmanager
def _progress_bar(settings) -> Iterator[Callable[[int], None]]:
    """A progress bar for a run, and the callback its source reports to: bytes of the recordings read,
    or messages read from Kafka (out of what the topics hold, with --stop-at-end), or received live."""
    if settings.live:
        with tqdm(unit="msg", unit_scale=True, desc="live", disable=None, leave=False) as bar:
            yield lambda done: bar.update(done - bar.n)
        return
    if settings.kafka is None:
        total = _recordings_size(list(settings.recordings))
        with tqdm(total=total, unit="B", unit_scale=True, desc="replay", disable=None, leave=False) as bar:
            yield lambda done: bar.update(done - bar.n)
        return
    from dataflows.kafka_source import KafkaRawSource

    source = KafkaRawSource(settings.kafka, settings.topics)  # a clear error for a broker down or a topic missing
    total = source.messages_now() if settings.stop_at_end else None
    with tqdm(total=total, unit="msg", unit_scale=True, desc="kafka", disable=None, leave=False) as bar:
        yield bar.update


def _ms(value: float) -> str:
    return "n/a (no feature rows)" if math.isnan(value) else f"{value:.1f} ms"


@app.command("micro-price")
def micro_price_command(
    paths: Annotated[list[Path], typer.Argument(help="Recordings to estimate the micro-price from.")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to save the tables (JSON).", show_default="$QF_MICRO_PRICE, else data/micro_price.json"
        ),
    ] = None,
    feed: FeedOption = None,
) -> None:
    """Fit Stoikov's micro-price adjustment per instrument from recordings, and save it for the flow."""
    from dataflows.micro_price import fit_tables, save_tables

    out = out or micro_price_path()
    writable_file(out, "--out")  # before the fit, not after it
    with tqdm(total=_recordings_size(paths), unit="B", unit_scale=True, desc="fit", disable=None, leave=False) as bar:
        tables = fit_tables(paths, feed, on_progress=lambda done: bar.update(done - bar.n))
    save_tables(out, tables)
    for instrument, table in tables.items():
        g = table.adjustment_ticks[0]
        console.print(
            f"{instrument}: tick {table.tick:g}, {table.observations:,} transitions; at a 1-tick spread the "
            f"adjustment runs from {g[0]:+.3f} to {g[-1]:+.3f} ticks across imbalance"
        )
    console.print(f"saved to {out}")


def _simulated_recording() -> Path:
    """The default recording: simulated once into the data folder, with its micro-price table."""
    from dataflows.micro_price import fit_tables, save_tables
    from simulator import simulate

    folder = simulated_recording_dir()
    if not (folder / "manifest.json").is_file():
        console.print(f"no recording given: simulating {DEFAULT_SIMULATED_MINUTES} minutes of two venues into {folder}")
        with tqdm(total=DEFAULT_SIMULATED_MINUTES * 60, unit="s", desc="simulate", disable=None, leave=False) as bar:
            simulate(folder, seed=DEFAULT_SIMULATION_SEED, minutes=DEFAULT_SIMULATED_MINUTES, progress=bar.update)
    tables = micro_price_path()
    if not tables.is_file():
        save_tables(tables, fit_tables([folder]))
        console.print(f"micro-price tables fitted on it: {tables}")
    return folder


def _recordings_size(paths: list[Path]) -> int:
    from dataflows.sources import recording_paths

    return sum(path.stat().st_size for path in recording_paths(paths))


@app.command("features")
def features_command() -> None:
    """List the features every feature row holds: name, definition and unit (Markdown)."""
    from quantumflow.features import markdown_table

    typer.echo(markdown_table(), nl=False)


@app.command("simulate")
def simulate_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the recording files and manifest.json (created if needed).")
    ],
    seed: Annotated[int, typer.Option(min=0, help="Random seed: the same arguments always give the same bytes.")] = 0,
    minutes: Annotated[float, typer.Option(help="Minutes of market to simulate.")] = 10.0,
    symbol: Annotated[
        str, typer.Option(help="Binance spot symbol; Coinbase trades its base asset against USD (BTCUSDT: BTC-USD).")
    ] = "BTCUSDT",
    price: Annotated[float | None, typer.Option(help="Starting price, 1,000 to 1,000,000 (default 60,000).")] = None,
    faults: Annotated[
        bool,
        typer.Option(
            "--faults", help="Inject faults: lost Binance diffs, lost Coinbase level2 messages, truncated lines."
        ),
    ] = False,
    compress: Annotated[bool, typer.Option("--gzip/--no-gzip", help="Gzip the recording files.")] = True,
) -> None:
    """Simulate one symbol on Binance and Coinbase, written as the venues' own messages: one native
    recording per connection, plus manifest.json."""
    import time
    from collections import Counter

    from simulator import check_arguments, simulate

    with bad_input():
        check_arguments(seed=seed, minutes=minutes, symbol=symbol, price=price)
    writable_folder(out)
    began = time.perf_counter()
    ticks = max(0, round(minutes * 60))
    with tqdm(total=ticks, unit="s", desc="simulate", disable=None, leave=False) as bar:
        result = simulate(
            out,
            seed=seed,
            minutes=minutes,
            symbol=symbol,
            price=price,
            faults=faults,
            compress=compress,
            progress=bar.update,
        )
    seconds = time.perf_counter() - began
    total = sum(result.messages.values())
    console.print(f"{minutes:g} simulated minutes (seed {seed}) in {seconds:.1f} s, {total / seconds:,.0f} messages/s")
    for path in result.files:
        console.print(f"  {path}")
    console.print("messages: " + ", ".join(f"{venue} {count:,}" for venue, count in result.messages.items()))
    kinds = Counter(fault["kind"] for fault in result.faults)
    detail = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    console.print(f"faults: {len(result.faults)}" + (f" ({detail}; times in {result.manifest})" if detail else ""))


@app.command("feeds")
def feeds_command() -> None:
    """List the wire protocols QuantumFlow reads."""
    for feed in FEEDS.values():
        console.print(f"{feed.name:18} exchange {feed.exchange:14} {feed.description}")


def _warn_decoder_errors(count: int) -> None:
    if count:
        Console(stderr=True).print(
            f"[bold red]{count:,} decoder errors:[/] a decoder failed on messages it should have read or "
            "rejected; they are in the dead letters, reason 'decoder error: ...' (a bug to report)"
        )


def _print_summary(summary: ReplaySummary) -> None:
    console.print(
        f"{summary.messages:,} messages ({summary.quiet_messages:,} with no market data, "
        f"{summary.skipped_lines:,} client lines skipped)"
    )
    console.print("events: " + ", ".join(f"{name} {count:,}" for name, count in sorted(summary.events.items())))
    for title, counts in (("resyncs", summary.resyncs), ("dead letters", summary.dead_letters)):
        detail = ", ".join(f"{count:,} {reason}" for reason, count in counts.items())  # "1 sequence gap"
        console.print(f"{title}: {sum(counts.values()):,}" + (f" ({detail})" if detail else ""))
    console.print(f"decoder errors: {summary.decoder_errors:,}")
    _warn_decoder_errors(summary.decoder_errors)
    if summary.messages and sum(summary.dead_letters.values()) == summary.messages:
        Console(stderr=True).print(
            "[bold yellow]every message was a dead letter:[/] is the wire protocol right? (--feed; "
            "'quantumflow feeds' lists those QuantumFlow reads)",
            soft_wrap=True,
        )
    table = Table(title="final books")
    for column in ("instrument", "state", "sequence", "bid size", "bid", "ask", "ask size"):
        table.add_column(column, justify="left" if column in ("instrument", "state") else "right")
    for item in summary.instruments:
        state = item.state + (f", {item.buffered:,} updates buffered" if item.buffered else "")
        top = item.top_of_book
        cells = (
            [np.format_float_positional(top[k], trim="-") for k in ("bid_size", "bid_price", "ask_price", "ask_size")]
            if top
            else ["-"] * 4
        )
        table.add_row(item.instrument, state, str(item.sequence if item.sequence is not None else "-"), *cells)
    console.print(table)


if __name__ == "__main__":
    app(prog_name="quantumflow")
