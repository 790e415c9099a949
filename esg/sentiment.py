"""News sentiment: score headlines with VADER, tie them to companies, raise alerts on strongly negative news.

VADER (Hutto & Gilbert, 2014) is a lexicon and rule-based model made for short texts; it needs no
training data or network, runs in microseconds per headline and gives a ``compound`` score in [-1, 1]
(its authors call <= -0.05 negative). An alert needs a much stronger signal: ``compound`` at or below
the threshold, -0.5 by default, about where headlines about injuries, fraud or lawsuits land.

Headlines come from any iterable of ``Headline`` (a ``HeadlineSource``): a file today (``loader.HeadlineFile``),
a Kafka topic later. Creating the analyser reads VADER's lexicon, which ships inside its wheel.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import pandas as pd
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

DEFAULT_ALERT_THRESHOLD = -0.5


@dataclass(frozen=True)
class Headline:
    timestamp_ns: int  # nanoseconds since the Unix epoch, UTC
    headline: str
    source: str


class HeadlineSource(Protocol):
    def __iter__(self) -> Iterator[Headline]: ...


@dataclass(frozen=True)
class ScoredHeadline:
    headline: Headline
    compound: float
    company_ids: tuple[str, ...]  # companies the headline names, in order of first mention


@dataclass(frozen=True)
class Alert:
    company_id: str
    company_name: str
    timestamp_ns: int
    headline: str
    source: str
    compound: float


@cache
def _analyser() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def compound(text: str) -> float:
    """VADER's compound sentiment of a text, in [-1, 1]."""
    return float(_analyser().polarity_scores(text)["compound"])


class CompanyMatcher:
    """Finds companies in a text by name (any case) or ticker (upper case as listed, optionally as $TICKER).

    Both must stand as whole words, so the ticker ``ARC`` is not found in ``ARCHIVE`` or ``arc``.
    """

    def __init__(self, companies: pd.DataFrame) -> None:
        self._by_name = {name.casefold(): cid for cid, name in companies["name"].items()}
        self._by_ticker = dict(zip(companies["ticker"], companies.index, strict=True))
        names = sorted(companies["name"], key=len, reverse=True)  # longest first: the fullest name wins
        tickers = sorted(companies["ticker"], key=len, reverse=True)
        self._names = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, names)) + r")(?!\w)", re.IGNORECASE)
        self._tickers = re.compile(r"(?<![\w$])\$?(" + "|".join(map(re.escape, tickers)) + r")(?!\w)")

    def match(self, text: str) -> tuple[str, ...]:
        found = [(m.start(), self._by_name[m.group(1).casefold()]) for m in self._names.finditer(text)]
        found += [(m.start(), self._by_ticker[m.group(1)]) for m in self._tickers.finditer(text)]
        return tuple(dict.fromkeys(cid for _, cid in sorted(found)))


def score_headlines(headlines: Iterable[Headline], matcher: CompanyMatcher) -> list[ScoredHeadline]:
    return [ScoredHeadline(h, compound(h.headline), matcher.match(h.headline)) for h in headlines]


def raise_alerts(
    scored: Iterable[ScoredHeadline],
    holdings: Collection[str],
    names: dict[str, str],
    threshold: float = DEFAULT_ALERT_THRESHOLD,
) -> list[Alert]:
    """One alert per held company named in a headline whose compound score is at or below ``threshold``."""
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"a VADER threshold lies in [-1, 1], got {threshold}")
    return [
        Alert(cid, names[cid], s.headline.timestamp_ns, s.headline.headline, s.headline.source, s.compound)
        for s in scored
        if s.compound <= threshold
        for cid in s.company_ids
        if cid in holdings
    ]
