"""Letter ratings: the 0-10 overall score cut into seven equal bands, AAA at the top, CCC at the bottom.

A band includes its lower bound: AAA is 60/7 (about 8.571) and above, AA from 50/7 (7.143), A from
40/7 (5.714), BBB from 30/7 (4.286), BB from 20/7 (2.857), B from 10/7 (1.429), CCC below that.
"""

from __future__ import annotations

import math

RATINGS: tuple[str, ...] = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC")
# lower bound of each band, best first; CCC's is 0
LOWER_BOUNDS: tuple[float, ...] = tuple(10 * k / 7 for k in range(6, -1, -1))


def rating(score: float) -> str:
    """The letter rating of an overall score in [0, 10]."""
    if math.isnan(score) or not 0.0 <= score <= 10.0:
        raise ValueError(f"an ESG score lies in [0, 10], got {score}")
    return next(r for r, lower in zip(RATINGS, LOWER_BOUNDS, strict=True) if score >= lower)


def bands() -> list[tuple[str, float, float]]:
    """(rating, lower bound inclusive, upper bound) for each band, best first."""
    uppers = (10.0, *LOWER_BOUNDS[:-1])
    return list(zip(RATINGS, LOWER_BOUNDS, uppers, strict=True))
