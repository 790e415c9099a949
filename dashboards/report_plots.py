"""The analysis report's market pictures, one instrument each: the depth heatmap, multi-level OFI over
time, the depth and spread profile, and the features' correlations with future mid returns. Each
function writes a PNG and returns the caption's numbers: what a reader needs to trust the picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from dashboards.report_data import Grid, InstrumentData, book_levels
from models.plots import plt, save_figure  # pyplot with the file-only backend the evaluation plots use
from quantumflow.features import DEPTH_BUCKETS_BPS, FEATURES, TIME_WINDOWS_S
from store.schema import LEVELS

PRICE_BINS = 200
OFI_COLUMNS = tuple(f"ofi_{k}_{TIME_WINDOWS_S[0]}s" for k in range(1, LEVELS + 1))  # the registry's multi-level OFI
# Price levels drift with the market: correlating their level with a return says nothing.
CORRELATED = tuple(f.name for f in FEATURES if f.unit != "price")
TOP_FEATURES = 12
MIN_PAIRS = 100  # fewer (feature, future return) pairs than this: the horizon is left out


def _seconds(grid: Grid, start_ns: int) -> np.ndarray:
    return (grid.ts - start_ns) / 1e9


def _span(data: InstrumentData, grid: Grid) -> str:
    return (
        f"{data.seconds:,.1f} s of {data.instrument}, {grid.rows:,} buckets of {grid.bucket_ns / 1e9:g} s "
        "with rows (the last row of each)"
    )


def depth_heatmap_png(path: Path, data: InstrumentData) -> str:
    """Resting size per price bin and time bucket (10 levels a side), log colour, with the mid over it."""
    book = data.book
    bid_prices, bid_sizes = book_levels(book, "bid")
    ask_prices, ask_sizes = book_levels(book, "ask")
    prices, sizes = np.hstack([bid_prices, ask_prices]), np.hstack([bid_sizes, ask_sizes])
    held = np.isfinite(prices) & np.isfinite(sizes) & (sizes > 0)
    if not held.any():
        raise ValueError("no resting size in the book rows")
    low, high = float(prices[held].min()), float(prices[held].max())
    edges = np.linspace(low, high if high > low else low + 1.0, PRICE_BINS + 1)
    column = np.broadcast_to(np.arange(len(book.ts))[:, None], prices.shape)
    row = np.clip(np.searchsorted(edges, prices[held], side="right") - 1, 0, PRICE_BINS - 1)
    image = np.zeros((PRICE_BINS, len(book.ts)))
    np.add.at(image, (row, column[held]), sizes[held])
    seconds = _seconds(book, data.start_ns)
    step = book.bucket_ns / 1e9
    fig, ax = plt.subplots(figsize=(10, 4.8), layout="constrained")
    shown = np.ma.masked_equal(image, 0.0)
    mesh = ax.imshow(
        shown,
        origin="lower",
        aspect="auto",
        extent=(seconds[0], seconds[-1] + step, low, edges[-1]),
        cmap="viridis",
        norm=LogNorm(vmin=max(shown.min(), 1e-12), vmax=shown.max()),
        interpolation="nearest",
    )
    ax.set_facecolor("#10102a")  # empty cells dark, so the mid shows over them
    fig.colorbar(mesh, ax=ax, label="resting size (log)")
    mid = data.features["mid"] if data.features is not None else np.nanmean([bid_prices[:, 0], ask_prices[:, 0]], 0)
    mid_seconds = _seconds(data.features, data.start_ns) if data.features is not None else seconds
    ax.plot(mid_seconds + step, mid, color="white", linewidth=1.2, label="mid")
    ax.set_xlabel("seconds since the first row")
    ax.set_ylabel("price")
    ax.set_title(f"{data.instrument}: order-book depth")
    ax.legend(loc="upper right")
    save_figure(fig, path)
    return (
        f"{_span(data, book)}; {data.book_rows:,} book rows; price {low:,.6g} to {high:,.6g} in {PRICE_BINS} bins; "
        f"largest resting size in a cell {image.max():,.4g}."
    )


def ofi_png(path: Path, data: InstrumentData) -> str:
    """The mid, and multi-level order flow imbalance per level over time (diverging colour)."""
    grid = data.features
    ofi = np.vstack([grid[name] for name in OFI_COLUMNS])
    seconds = _seconds(grid, data.start_ns)
    step = grid.bucket_ns / 1e9
    finite = np.abs(ofi[np.isfinite(ofi)])
    scale = float(np.quantile(finite, 0.99)) if finite.size else 1.0
    scale = scale if scale > 0 else 1.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.6), sharex=True, height_ratios=(1, 2), layout="constrained")
    top.plot(seconds + step, grid["mid"], color="black", linewidth=1)
    top.set_ylabel("mid")
    top.set_title(f"{data.instrument}: multi-level order flow imbalance ({TIME_WINDOWS_S[0]} s windows)")
    mesh = bottom.imshow(
        ofi,
        origin="lower",
        aspect="auto",
        extent=(seconds[0], seconds[-1] + step, 0.5, LEVELS + 0.5),
        cmap="RdBu",
        vmin=-scale,
        vmax=scale,
        interpolation="nearest",
    )
    fig.colorbar(mesh, ax=bottom, label="OFI (size; + buying pressure)")
    bottom.set_ylabel("book level")
    bottom.set_xlabel("seconds since the first row")
    save_figure(fig, path)
    level_1 = grid[OFI_COLUMNS[0]]
    corr = pd.Series(level_1).corr(pd.Series(np.nansum(ofi, axis=0)))
    return (
        f"{_span(data, grid)}; {data.feature_rows:,} feature rows; columns {OFI_COLUMNS[0]} .. {OFI_COLUMNS[-1]}; "
        f"colour clipped at ±{scale:,.4g} (99th percentile of |OFI|); level-1 OFI correlates {corr:.2f} with "
        "the sum over the 10 levels."
    )


def profile_png(path: Path, data: InstrumentData) -> str:
    """Mean resting size per level a side, mean depth within 5/10/25 bps of the mid, and the spread's
    distribution: the average shape of the book."""
    fig, (ladder, buckets, spread_ax) = plt.subplots(1, 3, figsize=(12, 4), layout="constrained")
    notes = []
    levels = np.arange(1, LEVELS + 1)
    if data.book is not None:
        bid = np.nanmean(book_levels(data.book, "bid")[1], axis=0)
        ask = np.nanmean(book_levels(data.book, "ask")[1], axis=0)
        ladder.barh(levels, -bid, color="tab:green", label="bid")
        ladder.barh(levels, ask, color="tab:red", label="ask")
        ladder.axvline(0, color="black", linewidth=0.8)
        ladder.legend()
        notes.append(f"level-1 mean size bid {bid[0]:,.4g}, ask {ask[0]:,.4g} ({data.book.rows:,} book buckets)")
    else:
        ladder.text(0.5, 0.5, "no book rows", ha="center", transform=ladder.transAxes)
    ladder.set_yticks(levels)
    ladder.invert_yaxis()
    ladder.set_xlabel("mean resting size (bids left)")
    ladder.set_ylabel("level")
    ladder.set_title("size per level")
    grid = data.fine
    x = np.arange(len(DEPTH_BUCKETS_BPS))
    for offset, side, colour in ((-0.2, "bid", "tab:green"), (0.2, "ask", "tab:red")):
        means = [np.nanmean(grid[f"{side}_depth_{bps}bps"]) for bps in DEPTH_BUCKETS_BPS]
        buckets.bar(x + offset, means, width=0.4, color=colour, label=side)
    buckets.set_xticks(x, [f"{bps} bps" for bps in DEPTH_BUCKETS_BPS])
    buckets.set_ylabel("mean size within")
    buckets.set_title("depth near the mid")
    buckets.legend()
    spread = grid["spread_bps"][np.isfinite(grid["spread_bps"])]
    if spread.size:  # the rare wide spreads would squeeze the usual ones into one bar
        spread_ax.hist(spread, bins=50, range=(spread.min(), np.quantile(spread, 0.995)), color="tab:blue")
    spread_ax.set_xlabel("spread (bps), up to its 99.5th percentile")
    spread_ax.set_ylabel("buckets")
    spread_ax.set_title("spread")
    fig.suptitle(f"{data.instrument}: depth and spread profile")
    save_figure(fig, path)
    if spread.size:
        notes.append(
            f"spread median {np.median(spread):.3g} bps, 95th percentile {np.quantile(spread, 0.95):.3g} bps "
            f"over {spread.size:,} buckets of {grid.bucket_ns / 1e9:g} s"
        )
    return f"{_span(data, grid)}; " + "; ".join(notes) + "."


def future_returns(grid: Grid, seconds: int) -> np.ndarray | None:
    """1e4 * ln(mid after ``seconds`` / mid now) at each bucket (NaN past the end); None when the bucket
    does not divide the horizon."""
    if (seconds * 10**9) % grid.bucket_ns:
        return None
    shift = seconds * 10**9 // grid.bucket_ns
    mid = grid["mid"]
    out = np.full(len(mid), np.nan)
    if shift < len(mid):
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:-shift] = 1e4 * np.log(mid[shift:] / mid[:-shift])
    return out


def correlations(grid: Grid) -> tuple[dict[int, pd.Series], dict[int, int], list[str]]:
    """Per horizon of ``TIME_WINDOWS_S`` seconds: each feature's Spearman correlation with the future mid
    return (sorted by size), the pairs it is computed on, and why the horizons left out were."""
    frame = pd.DataFrame({name: grid[name] for name in CORRELATED})
    frame = frame.loc[:, frame.nunique() > 1]
    found, pairs, left_out = {}, {}, []
    for seconds in TIME_WINDOWS_S:
        ahead = future_returns(grid, seconds)
        if ahead is None:
            left_out.append(f"{seconds} s (shorter than a bucket)")
            continue
        usable = np.isfinite(ahead)
        if usable.sum() < MIN_PAIRS:
            left_out.append(f"{seconds} s ({int(usable.sum())} buckets have a future return)")
            continue
        corr = frame[usable].corrwith(pd.Series(ahead[usable], index=frame.index[usable]), method="spearman")
        corr = corr.dropna()
        found[seconds] = corr.reindex(corr.abs().sort_values(ascending=False).index)
        pairs[seconds] = int(usable.sum())
    return found, pairs, left_out


def correlations_png(path: Path, data: InstrumentData) -> str:
    """The features most correlated (Spearman) with the future mid return, one panel per horizon."""
    found, pairs, left_out = correlations(data.fine)
    if not found:
        raise ValueError(f"no horizon has {MIN_PAIRS} buckets with a future return: " + ", ".join(left_out))
    fig, axes = plt.subplots(1, len(found), figsize=(5.2 * len(found), 4.6), squeeze=False, layout="constrained")
    for ax, (seconds, corr) in zip(axes[0], found.items(), strict=True):
        top = corr.iloc[:TOP_FEATURES][::-1]
        ax.barh(top.index, top.to_numpy(), color=np.where(top.to_numpy() >= 0, "tab:green", "tab:red"))
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"{seconds} s ahead ({pairs[seconds]:,} buckets)")
        ax.set_xlabel("Spearman correlation")
        ax.tick_params(axis="y", labelsize="small")
    fig.suptitle(f"{data.instrument}: features against the future mid return")
    save_figure(fig, path)
    best = "; ".join(f"{s} s: {corr.index[0]} {corr.iloc[0]:+.3f}" for s, corr in found.items())
    skipped = f"; left out: {', '.join(left_out)}" if left_out else ""
    return (
        f"{_span(data, data.fine)}; future return 1e4·ln(mid(t+h)/mid(t)) in bps; top {TOP_FEATURES} of "
        f"{len(found[next(iter(found))])} features by |correlation|; strongest per horizon: {best}{skipped}."
    )
