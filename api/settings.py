"""The API's settings, read from environment variables (documented in docs/api.md)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from operators.arbitrage import ArbitrageRules, rules_with

DEFAULT_PORT = 8000
DEFAULT_RATE_LIMIT = "100/s"
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_STALE_AFTER_S = 60.0
DEFAULT_REFRESH_S = 0.1
PERIODS_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE = re.compile(r"\s*(\d+)\s*/\s*([a-z]+)\s*\Z")


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``period_s`` seconds per client, with bursts of up to ``requests``."""

    requests: int
    period_s: float

    def __str__(self) -> str:
        return f"{self.requests} requests per {self.period_s:g} s"


@dataclass(frozen=True)
class ApiSettings:
    store_url: str | None = None  # None: QF_STORE, else the default SQLite file (store.open_store decides)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_key: str | None = None  # required by POST /v1/predict when set
    cors_origins: tuple[str, ...] = ()
    rate_limit: RateLimit | None = field(default_factory=lambda: parse_rate_limit(DEFAULT_RATE_LIMIT))
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    models_dir: Path | None = None  # None: the models' own default (QF_MODELS_DIR, else data/models)
    arbitrage: ArbitrageRules = field(default_factory=ArbitrageRules)
    stale_after_s: float | None = DEFAULT_STALE_AFTER_S  # /health is degraded past it; None: never
    # the latest-prediction and book answers kept in memory, read again this often; None: read on every request
    refresh_s: float | None = DEFAULT_REFRESH_S
    workers: int = field(default_factory=lambda: default_workers())  # server processes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Settings from ``QF_*`` variables; a malformed one is a ValueError naming it."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        try:
            arbitrage = rules_with(get("QF_ARB_TAKER_FEES_BPS"), get("QF_ARB_ALIASES"))
        except ValueError as error:
            raise ValueError(f"QF_ARB_TAKER_FEES_BPS / QF_ARB_ALIASES: {error}") from None
        return cls(
            store_url=get("QF_STORE") or None,
            host=get("QF_API_HOST") or "127.0.0.1",
            port=_int("QF_API_PORT", get("QF_API_PORT"), DEFAULT_PORT, 1, 65535),
            api_key=get("QF_API_KEY") or None,
            cors_origins=tuple(o.strip() for o in get("QF_API_CORS_ORIGINS").split(",") if o.strip()),
            rate_limit=parse_rate_limit(get("QF_API_RATE_LIMIT") or DEFAULT_RATE_LIMIT, "QF_API_RATE_LIMIT"),
            max_body_bytes=_int(
                "QF_API_MAX_BODY_BYTES", get("QF_API_MAX_BODY_BYTES"), DEFAULT_MAX_BODY_BYTES, 1, 1 << 30
            ),
            models_dir=Path(get("QF_MODELS_DIR")) if get("QF_MODELS_DIR") else None,
            arbitrage=arbitrage,
            stale_after_s=parse_seconds_or_off(
                get("QF_API_STALE_AFTER_S"), DEFAULT_STALE_AFTER_S, "QF_API_STALE_AFTER_S"
            ),
            refresh_s=parse_seconds_or_off(get("QF_API_REFRESH_S"), DEFAULT_REFRESH_S, "QF_API_REFRESH_S"),
            workers=_int("QF_API_WORKERS", get("QF_API_WORKERS"), default_workers(), 1, 64),
        )


def default_workers() -> int:
    """One server process per core the process may use, at least one, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def parse_rate_limit(text: str, name: str = "rate limit") -> RateLimit | None:
    """``"100/s"``, ``"6000/min"``, ``"1000/h"``; ``"0"`` or ``"off"`` turn limiting off (None)."""
    if text.strip().lower() in ("0", "off", "none"):
        return None
    match = _RATE.match(text.lower())
    if not match or match.group(2) not in PERIODS_S or int(match.group(1)) < 1:
        raise ValueError(f"{name}={text!r}: expected REQUESTS/PERIOD with a period of s, min or h (e.g. 100/s), or off")
    return RateLimit(int(match.group(1)), PERIODS_S[match.group(2)])


def parse_seconds_or_off(text: str, default: float, name: str) -> float | None:
    """Seconds above 0; ``"off"`` or ``"0"``: None; empty: ``default``; anything else a ValueError naming ``name``."""
    if not text:
        return default
    if text.lower() in ("0", "off", "none"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(f"{name}={text!r}: expected a number of seconds above 0 (e.g. 60), or off")
    return seconds


def _int(name: str, text: str, default: int, low: int, high: int) -> int:
    if not text:
        return default
    value = int(text) if text.isdigit() else math.nan
    if not low <= value <= high:
        raise ValueError(f"{name}={text!r}: expected a whole number from {low} to {high}")
    return int(value)
