"""``quantumflow backtest``: a strategy over recordings on the simulated venue, with its report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from cli.errors import USAGE, UserError, bad_input, writable_folder
from cli.models import FeedOption, SeedOption
from quantumflow.settings import data_dir, models_dir

STRATEGY_NAMES = ("follow", "random", "market-maker", "execution")
QUEUE_NAMES = ("risk-averse", "prob")
_SHOWN = (  # (metric, label): what the terminal shows, in this order; units and values as the report has them
    ("net_pnl", "net P&L"),
    ("gross_pnl", "gross P&L"),
    ("fees", "fees"),
    ("slippage", "slippage"),
    ("spread_cost", "spread paid (against the mid)"),
    ("return_pct", "return"),
    ("trades", "round trips"),
    ("fills", "fills"),
    ("orders", "orders"),
    ("cancels", "cancels"),
    ("clipped", "orders cut by the limits"),
    ("rejected", "rejected by the venue"),
    ("win_rate", "win rate"),
    ("profit_factor", "profit factor"),
    ("avg_trade_pnl", "average trade"),
    ("avg_trade_duration_s", "average duration"),
    ("sharpe", "Sharpe"),
    ("sortino", "Sortino"),
    ("max_drawdown", "max drawdown"),
    ("max_drawdown_pct", "max drawdown"),
    ("turnover", "turnover"),
    ("exposure", "exposure"),
    ("risk_cut_orders", "orders cut by the risk overlay"),
    ("shortfall_mean_bps", "implementation shortfall, mean"),
)
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON: settings, metrics by plain names, benchmarks.")
]


def backtest_command(
    paths: Annotated[list[Path], typer.Argument(help="Recording(s) to backtest on (files or folders), in time order.")],
    strategy: Annotated[str, typer.Option(help=f"The strategy: {', '.join(STRATEGY_NAMES)}.")] = "follow",
    instrument: Annotated[
        str | None, typer.Option(help="exchange:symbol; needed when the recordings hold several.")
    ] = None,
    models: Annotated[
        Path | None, typer.Option(help="Folder of trained models that make the signals.", show_default="$QF_MODELS_DIR")
    ] = None,
    train: Annotated[
        list[Path] | None,
        typer.Option(
            "--train", help="Train the models on these recordings first (they must end before the test ones)."
        ),
    ] = None,
    context: Annotated[
        list[Path] | None,
        typer.Option(
            "--context",
            help="Recordings just before the test ones, replayed first without trading: the book's snapshot, the "
            "features' windows (default: the --train ones).",
        ),
    ] = None,
    from_store: Annotated[
        bool, typer.Option("--from-store", help="Read the predictions from the store (a run over these recordings).")
    ] = False,
    store: Annotated[
        str | None, typer.Option(help="Store the result goes to (and predictions come from).", show_default="$QF_STORE")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the report.", show_default="data/backtests/ID")] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A strategy setting, NAME=VALUE (e.g. threshold=0.6, qty=0.05); risk.NAME=VALUE for the risk overlay.",
        ),
    ] = None,
    risk_overlay: Annotated[
        bool, typer.Option("--risk-overlay", help="Cut new positions when volatility is forecast to jump.")
    ] = False,
    capital: Annotated[float, typer.Option(min=1.0, help="Starting capital, in the quote currency.")] = 100_000.0,
    max_position: Annotated[
        float | None, typer.Option(min=0.0, help="Largest absolute position, in units of the instrument.")
    ] = None,
    fixed_fee: Annotated[float, typer.Option(min=0.0, help="Fee per order that fills, in money.")] = 10.0,
    maker_bps: Annotated[float, typer.Option(help="Maker fee, bps of notional (negative: a rebate).")] = 0.0,
    taker_bps: Annotated[float, typer.Option(help="Taker fee, bps of notional (negative: a rebate).")] = 0.0,
    slippage_bps: Annotated[float, typer.Option(min=0.0, help="Extra slippage on taker fills, bps.")] = 2.0,
    latency: Annotated[
        str, typer.Option(help="Order latency each way: milliseconds, or 'feed' to draw it from the recording's.")
    ] = "0",
    queue: Annotated[str, typer.Option(help=f"Queue model of resting orders: {', '.join(QUEUE_NAMES)}.")] = (
        "risk-averse"
    ),
    depth_only: Annotated[
        bool,
        typer.Option(
            "--depth-only", help="Match against the depth stream alone, leaving out the best bid/offer stream."
        ),
    ] = False,
    feed: FeedOption = None,
    seed: SeedOption = 7,
    as_json: JsonOption = False,
) -> None:
    """Backtest a strategy over recordings, event by event, on a simulated venue: orders arrive after
    the latency, market orders walk the rebuilt book, limit orders wait in the queue; fees, slippage
    and limits as given. The signals are the ensemble's predictions made by the flow's own code with
    the models (trained first on --train, if given), or read from the store (--from-store).

    Prints the economics (net and gross P&L, fees, Sharpe, Sortino, win rate, drawdown, profit
    factor, trades...), writes a report (P&L, drawdown and position plot, HTML, result.json) and stores the
    result (GET /v1/backtests). The execution strategy is compared with TWAP and immediate execution."""
    from backtest.runner import Settings, new_id, strategy_of
    from dataflows.training import instrument_spans, test_starts

    console = Console(stderr=as_json)
    if strategy not in STRATEGY_NAMES:
        raise UserError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGY_NAMES)}", USAGE)
    if queue not in QUEUE_NAMES:
        raise UserError(f"unknown queue model {queue!r}: choose one of {', '.join(QUEUE_NAMES)}", USAGE)
    if from_store and (train or models):
        raise UserError("--from-store reads the predictions: it takes no --models or --train", USAGE)
    strategy_settings, risk_settings = _settings(setting or [])
    if risk_settings and not risk_overlay:
        raise UserError("risk.NAME settings are the risk overlay's: add --risk-overlay", USAGE)
    from dataflows.sources import recording_paths
    from store import open_store

    recording_paths([*paths, *(context or []), *(train or [])])  # a missing one is said before a folder is made
    open_store(store).check()  # where the result goes: a bad URL or a store that cannot be used, before the run
    backtest_id = new_id()
    folder = out or data_dir() / "backtests" / backtest_id
    writable_folder(folder)  # before anything long runs
    with bad_input():
        _finite(capital=capital, max_position=max_position, fixed_fee=fixed_fee, maker_bps=maker_bps)
        _finite(taker_bps=taker_bps, slippage_bps=slippage_bps)
        settings = Settings(
            strategy,
            strategy_settings,
            _costs(fixed_fee, maker_bps, taker_bps, slippage_bps),
            _limits(capital, max_position),
            _latency(latency),
            queue,
            risk_settings if risk_overlay else None,
            seed=seed,
            depth_only=depth_only,
        )
        strategy_of(settings)  # a bad setting is one line before anything long runs
    spans = instrument_spans(paths, feed)
    with bad_input():
        chosen = _instrument(spans, instrument)
    before = context if context is not None else train or []
    if before:  # refuses test recordings that do not start after the earlier ones end
        test_starts(before, paths, feed, tested=spans)
    first, last = spans[chosen]
    start = first if before else 0
    signals, described = _signals(
        [*before, *paths],
        (start, first, last),
        chosen,
        models,
        train,
        from_store,
        store,
        feed,
        folder,
        seed,
        console,
    )
    result = _run(paths, before, start, chosen, settings, signals, described, feed, backtest_id)
    from backtest.plain import result_json
    from backtest.report import metric_text, write_report
    from backtest.storage import save

    files = write_report(result, folder)
    save(result, store)
    if as_json:
        typer.echo(json.dumps(result_json(result), indent=1))
        return
    console.print(metrics_table(result))
    for name, benchmark in result.benchmarks.items():
        mean = metric_text("shortfall_mean_bps", benchmark["shortfall_mean_bps"])
        console.print(
            f"{name}: implementation shortfall {mean} bps on average over {benchmark['parents_completed']} parents"
        )
    console.print(f"report: {files['html']}  (stored as backtest {result.id})")


def metrics_table(result) -> Table:
    from backtest.report import metric_text, metric_unit

    table = Table("metric", "value", "unit", title=f"{result.strategy} on {result.instrument}")
    for key, label in _SHOWN:
        if key in result.metrics:
            table.add_row(label, metric_text(key, result.metrics[key]), metric_unit(key))
    table.caption = result.metrics.get("annualisation")
    return table


def _settings(pairs: list[str]) -> tuple[dict, dict]:
    """The strategy's and the risk overlay's settings, as text (each is read as its default's type)."""
    strategy, risk = {}, {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UserError(f"--set takes NAME=VALUE, got {pair!r}", USAGE)
        if name.startswith("risk."):
            risk[name.removeprefix("risk.")] = value
        else:
            strategy[name] = value
    return strategy, risk


def _costs(fixed_fee, maker_bps, taker_bps, slippage_bps):
    from backtest.costs import Costs

    return Costs(fixed_fee=fixed_fee, maker_bps=maker_bps, taker_bps=taker_bps, slippage_bps=slippage_bps)


def _limits(capital, max_position):
    from backtest.costs import Limits

    return Limits(max_position=max_position, capital=capital)


def _finite(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number, got {value}")


def _latency(text: str) -> float | None:
    if text == "feed":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--latency takes milliseconds or 'feed', got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"--latency must be 0 or more milliseconds, got {text!r}")
    return value


def _instrument(spans: dict[str, tuple[int, int]], instrument: str | None) -> str:
    """The instrument to backtest among those of the recordings (``instrument_spans``)."""
    if not spans:
        raise ValueError("the recordings hold no market data")
    if instrument is None:
        if len(spans) > 1:
            raise ValueError(
                f"the recordings hold several instruments: choose one with --instrument ({', '.join(spans)})"
            )
        return next(iter(spans))
    if instrument not in spans:
        raise ValueError(f"the recordings hold no {instrument}: they hold {', '.join(spans)}")
    return instrument


def _signals(paths, times, instrument, models, train, from_store, store, feed, out, seed, console):
    """The signals from ``start`` on, and what to say of where they came from; ``times``: (start, the
    first and last receive times of the instrument in the recordings to backtest)."""
    from backtest.signals import flow_signals, store_signals

    start, first, last = times
    if from_store:
        from store import open_store

        return store_signals(open_store(store).reader(), instrument, first, last), {"signals_from": "store"}
    described: dict = {}
    if train:
        models = _trained(train, feed, out, seed, console)
        described["trained_on"] = [str(p) for p in train]
    from models.bundle import Bundle

    folder = models or models_dir()
    bundle = Bundle.load(folder)
    described.update(signals_from="flow", models=str(folder))
    trained_on = bundle.trained_on()
    if trained_on is not None and instrument not in trained_on:
        console.print(
            f"[yellow]warning[/yellow]: the models in {folder} were not trained on {instrument}", soft_wrap=True
        )
    with _bar(paths, "predict") as progress:
        return flow_signals(paths, instrument, bundle, feed, progress, start), described


def _trained(train, feed, out, seed, console) -> Path:
    """Models trained as ``quantumflow train`` does (tuned settings if any) on ``train`` only."""
    from cli.models import experiment, training_settings
    from operators.labels import DEFAULT_HORIZONS

    folder = out / "models"
    console.print(f"training the models on {', '.join(map(str, train))} into {folder}")
    settings = training_settings(DEFAULT_HORIZONS, 20, None, seed, None, False, console)
    experiment(train, None, settings, feed, folder / "report", folder, console)
    return folder


def _run(paths, context, start, instrument, settings, signals, described, feed, backtest_id):
    from backtest.runner import backtest

    with _bar([*context, *paths], "backtest") as progress:
        return backtest(paths, instrument, settings, signals, context, start, feed, progress, described, backtest_id)


class _bar:
    """A progress bar over the recordings' bytes, told the bytes read so far."""

    def __init__(self, paths, what: str) -> None:
        from dataflows.sources import recording_paths

        self.total = sum(path.stat().st_size for path in recording_paths(paths))
        self.what = what

    def __enter__(self):
        self.bar = tqdm(total=self.total, unit="B", unit_scale=True, desc=self.what, disable=None, leave=False)
        return lambda done: self.bar.update(done - self.bar.n)

    def __exit__(self, *exc) -> None:
        self.bar.close()
