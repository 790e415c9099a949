"""The market simulator: one instrument on two venues, written as real exchange recordings.

**The model.** A latent fair price moves in jumps (Poisson arrivals, lognormal sizes of about a
tenth of a basis point), more often and larger in the volatile regime of a two-state Markov
chain. Binance leads: its makers and informed traders act on the fair price itself; Coinbase
follows, on the fair price of 100 ms ago, while arbitrageurs take Coinbase quotes that cross
Binance's. So the venues dislocate (one's bid above the other's ask) briefly after the price
moves, until Coinbase catches up or is arbitraged. Each venue's book holds price queues (ticks
of 0.01, the venue's lot) driven by a Poisson stream of limit orders, cancellations, market
orders and pulls of stale quotes, whose intensities lean towards the venue's reference price
and its L1 depth imbalance (``simulator.flow`` tells how). A queue that runs out moves the
touch, and the side being built up is the side the price moves to: the imbalance predicts the
next mid change, noisily.

**The recording.** What a recorder connected to both venues writes, one native recording file
(``<receive ns> <raw message>`` lines, gzip by default) per connection: Binance spot's combined
stream (``depth@100ms``, ``bookTicker``, ``trade``) with the REST depth snapshots its client
fetched, Coinbase Advanced Trade ``level2``, and ``market_trades``. Receive times add each
venue's network latency (the recorder sits near Binance: about 3 ms, Coinbase about 72 ms). A
``manifest.json`` beside them records the seed, the arguments, the files and the faults.

**Faults** (when asked): a lost Binance diff (the client sees the update-id gap and fetches a new
snapshot, which arrives a round trip later), a lost Coinbase level2 message (a ``sequence_num``
gap; the client subscribes again and gets a new snapshot), and lines cut short (malformed JSON).

The same arguments always give the same bytes: every random number comes from NumPy Generators
seeded from ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from operators.feeds.common import iso_to_ns
from simulator.book import BookState
from simulator.config import Instrument, MarketModel
from simulator.engine import run
from simulator.output import GENERATOR, write_manifest, write_recording

DEFAULT_START = "2024-08-08T00:00:00Z"
MAX_MINUTES = 24 * 60
MIN_PRICE, MAX_PRICE = 1_000, 1_000_000

__all__ = ["DEFAULT_START", "BookState", "MarketModel", "Simulation", "check_arguments", "simulate"]


@dataclass
class Simulation:
    """What ``simulate`` wrote, and the venues' own books to check a replay against."""

    files: list[Path]
    manifest: Path
    messages: dict[str, int]  # per venue
    faults: list[dict]
    books: dict[str, BookState]  # per instrument key, at the end
    checkpoints: dict[str, list[BookState]]  # per instrument key, at sampled update ids


def simulate(
    out_dir: str | Path,
    *,
    seed: int = 0,
    minutes: float = 10.0,
    symbol: str = "BTCUSDT",
    price: float | None = None,
    faults: bool = False,
    compress: bool = True,
    start: str = DEFAULT_START,
    progress: Callable[[int], None] | None = None,
    model: MarketModel | None = None,
) -> Simulation:
    """Simulate ``minutes`` of ``symbol`` on Binance and Coinbase and write the recording into
    ``out_dir`` (created if needed). ``progress`` is called with simulated seconds as they pass.
    Raises ``ValueError`` for arguments out of range (see ``check_arguments``)."""
    instrument, start_ns = check_arguments(seed=seed, minutes=minutes, symbol=symbol, price=price, start=start)
    model = model or MarketModel()
    if price is not None:
        model = replace(model, price=price)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ".txt"
    binance, coinbase = run(model, instrument, seed, start_ns, minutes * 60, faults, suffix, progress)
    recorded = {"binance": binance.recorded(), "coinbase": coinbase.recorded()}
    for files in recorded.values():
        for file in files:
            write_recording(out / file.name, file.lines, compress)
    messages = {venue: sum(len(file.lines) for file in files) for venue, files in recorded.items()}
    injected = sorted(binance.session.faults.injected, key=lambda fault: fault["receive_ns"])
    manifest = write_manifest(
        out,
        [file for files in recorded.values() for file in files],
        generator=GENERATOR,
        seed=seed,
        arguments={
            "minutes": minutes,
            "symbol": instrument.binance_symbol,
            "price": model.price,
            "faults": faults,
            "gzip": compress,
            "start": start,
        },
        start_ns=start_ns,
        end_ns=start_ns + int(minutes * 60 * 1e9),
        messages=messages,
        faults=injected,
    )
    return Simulation(
        files=[out / file.name for files in recorded.values() for file in files],
        manifest=manifest,
        messages=messages,
        faults=injected,
        books={feed.instrument: feed.final_state() for feed in (binance, coinbase)},
        checkpoints={feed.instrument: feed.checkpoints for feed in (binance, coinbase)},
    )


def check_arguments(
    *, seed: int, minutes: float, symbol: str, price: float | None, start: str = DEFAULT_START
) -> tuple[Instrument, int]:
    """``simulate``'s arguments checked before any work: the instrument and the start time in ns, or a
    ``ValueError`` saying which argument is out of range."""
    if not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be more than 0 and at most {MAX_MINUTES}, got {minutes}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if price is not None and not MIN_PRICE <= price <= MAX_PRICE:
        raise ValueError(
            f"price must be between {MIN_PRICE:,} and {MAX_PRICE:,} (the model is scaled for BTC), got {price}"
        )
    return Instrument.from_symbol(symbol), _start_ns(start)


def _start_ns(start: str) -> int:
    text = start.strip()
    try:
        if text.endswith("Z"):
            return iso_to_ns(text)
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"start must be an ISO 8601 UTC time such as {DEFAULT_START}, got {start!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
