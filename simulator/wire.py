"""Numbers and times printed as the venues print them.

Binance prints every price and quantity with 8 decimals (``"61837.63000000"``); Coinbase prints
the shortest exact decimal (``"21921.3"``, ``"0.002"``, ``"0"``) and times as Go's RFC 3339
with trailing zeros of the fraction dropped (``"2023-02-09T20:32:50.71496485Z"``).
"""

from __future__ import annotations

import time
from functools import lru_cache


def fixed(units: int, decimals: int, width: int = 8) -> str:
    """``units`` times 10^-``decimals`` with exactly ``width`` decimals."""
    whole, fraction = divmod(units, 10**decimals)
    return f"{whole}.{fraction:0{decimals}d}{'0' * (width - decimals)}"


def trimmed(units: int, decimals: int) -> str:
    """``units`` times 10^-``decimals`` as the shortest exact decimal."""
    whole, fraction = divmod(units, 10**decimals)
    return f"{whole}.{fraction:0{decimals}d}".rstrip("0") if fraction else str(whole)


@lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def rfc3339(ns: int, digits: int = 9) -> str:
    """UTC time with ``digits`` fraction digits at most, trailing zeros dropped."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    fraction //= 10 ** (9 - digits)
    text = _second(seconds)
    return f"{text}.{fraction:0{digits}d}".rstrip("0") + "Z" if fraction else text + "Z"
