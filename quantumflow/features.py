"""The one list of features: name, definition and unit, in the column order of every feature row.

Training, the flow, the store, the API and the dashboards all read this table, so a feature is
added in one place. Definitions use: b_k, a_k the k-th best bid and ask prices (k = 1 best),
qb_k, qa_k their sizes, m the mid, r_i = 1e4 * ln(m_i / m_{i-1}) the mid log return of book
event i in basis points. Time windows are trailing windows of local receive time, ``(t - w, t]``;
event windows are the last W book events of the instrument, this one included.
"""

from __future__ import annotations

from typing import NamedTuple

LEVELS = 10  # book levels per side the features read
OFI_EVENT_WINDOWS = (10, 100)  # events
TIME_WINDOWS_S = (1, 10, 60)  # seconds
DEPTH_BUCKETS_BPS = (5, 10, 25)


class Feature(NamedTuple):
    name: str
    definition: str
    unit: str


def _features() -> list[Feature]:
    f = [
        Feature("mid", "(b_1 + a_1) / 2", "price"),
        Feature("spread", "a_1 - b_1", "price"),
        Feature("spread_bps", "1e4 * (a_1 - b_1) / mid", "bps"),
        Feature("weighted_mid", "(b_1 * qa_1 + a_1 * qb_1) / (qb_1 + qa_1)", "price"),
        Feature(
            "micro_price",
            "Stoikov (2018) micro-price: mid + G*(imbalance, spread) from a table fitted on a recording; "
            "weighted_mid where no table covers the state",
            "price",
        ),
    ]
    f += [
        Feature(
            f"depth_imbalance_{k}",
            f"(sum qb_1..{k} - sum qa_1..{k}) / (sum qb_1..{k} + sum qa_1..{k}), cumulated over levels 1..{k}",
            "ratio in [-1, 1]",
        )
        for k in range(1, LEVELS + 1)
    ]
    f.append(Feature("ofi_1", "Cont-Kukanov-Stoikov order flow increment e_1 of this event at level 1", "size"))
    for window in OFI_EVENT_WINDOWS:
        levels = range(1, LEVELS + 1) if window == max(OFI_EVENT_WINDOWS) else (1,)
        f += [
            Feature(
                f"ofi_{k}_{window}e",
                f"multi-level OFI at level {k} (Xu-Gould-Howison): sum of e_{k} over the last {window} events",
                "size",
            )
            for k in levels
        ]
    for seconds in TIME_WINDOWS_S[:2]:
        levels = range(1, LEVELS + 1) if seconds == TIME_WINDOWS_S[0] else (1,)
        f += [
            Feature(
                f"ofi_{k}_{seconds}s",
                f"multi-level OFI at level {k} (Xu-Gould-Howison): sum of e_{k} over the last {seconds} s",
                "size",
            )
            for k in levels
        ]
    for seconds in TIME_WINDOWS_S[:2]:
        f += [
            Feature(
                f"signed_volume_{seconds}s",
                f"sum of side * size of trades over the last {seconds} s (side +1 buyer-initiated)",
                "size",
            ),
            Feature(
                f"trade_imbalance_{seconds}s",
                f"(buy volume - sell volume) / (buy volume + sell volume) over the last {seconds} s; 0 with no trades",
                "ratio in [-1, 1]",
            ),
        ]
    f.append(Feature("trade_rate_10s", "trades per second over the last 10 s", "1/s"))
    f += [
        Feature(f"realized_variance_{s}s", f"sum of r_i^2 over the events of the last {s} s", "bps^2")
        for s in TIME_WINDOWS_S
    ]
    f += [
        Feature(
            f"bipower_variation_{s}s",
            f"(pi / 2) * sum of |r_i| * |r_(i-1)| over consecutive events of the last {s} s "
            "(Barndorff-Nielsen & Shephard 2004)",
            "bps^2",
        )
        for s in TIME_WINDOWS_S[1:]
    ]
    f += [
        Feature(
            f"{side}_slope",
            f"least-squares slope through the origin of cumulative {side} size at levels 1..{LEVELS} "
            "against the level's distance from mid in bps (Naes & Skjeltorp 2006)",
            "size/bps",
        )
        for side in ("bid", "ask")
    ]
    for side in ("bid", "ask"):
        f += [
            Feature(
                f"{side}_depth_{bps}bps",
                f"{side} size at levels 1..{LEVELS} priced within {bps} bps of mid (volume profile)",
                "size",
            )
            for bps in DEPTH_BUCKETS_BPS
        ]
        f.append(Feature(f"{side}_depth_{LEVELS}", f"{side} size at levels 1..{LEVELS}", "size"))
    f += [Feature(f"mid_return_{w}e", f"1e4 * ln(mid / mid {w} events earlier)", "bps") for w in OFI_EVENT_WINDOWS]
    f.append(Feature("time_since_mid_change", "time since the mid last changed (0 on the event that changes it)", "s"))
    f += [Feature(f"event_rate_{s}s", f"book events per second over the last {s} s", "1/s") for s in TIME_WINDOWS_S[:2]]
    return f


FEATURES: tuple[Feature, ...] = tuple(_features())
FEATURE_NAMES: tuple[str, ...] = tuple(feature.name for feature in FEATURES)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}


def markdown_table() -> str:
    """The registry as a Markdown table (docs/features.md is this, kept in step by a test)."""
    lines = ["| # | name | definition | unit |", "|---|---|---|---|"]
    lines += [
        f"| {i} | `{f.name}` | {f.definition.replace('|', chr(92) + '|')} | {f.unit} |"
        for i, f in enumerate(FEATURES, 1)
    ]
    return "\n".join(lines) + "\n"
