"""Cross-venue arbitrage: where one venue's best bid is above another venue's best ask for the same asset.

Pure: quotes in, opportunities out, no I/O. The API serves it from the store's latest books and the
live trading dashboard reuses it.

Which instruments are the same asset (``ArbitrageRules``):
- An instrument ``exchange:symbol`` is compared only if its exchange has a taker fee in the rules;
  the defaults list the spot venues (Binance, Coinbase, Kraken). Futures venues (``binance_usdm``,
  ``binance_coinm``) are left out: they trade at a basis to spot, which is not an arbitrage.
- The symbol is split into base and quote: at ``-`` or ``/`` (``BTC-USD``, ``XBT/USD``), else by the
  longest known quote currency it ends with (``BTCUSDT`` -> BTC, USDT).
- Aliases then name both sides in common terms: XBT is BTC, and the USD stablecoins USDT and USDC
  count as USD. That treats a stablecoin at par, ignoring its deviation from one dollar (usually a few
  bps, more in a depeg), so an edge smaller than that deviation is not an arbitrage; pass other
  aliases to compare stablecoin books separately.

The edges, for buying at the ask a on one venue and selling at the bid b on another, with taker fees
f_buy and f_sell as fractions of each leg's notional:
  gross_bps = 1e4 * (b - a) / a
  net_bps   = 1e4 * (b * (1 - f_sell) - a * (1 + f_buy)) / a
  size      = min(ask size, bid size): what both top levels can fill at those prices
  net_profit = size * (b * (1 - f_sell) - a * (1 + f_buy)), in the quote currency
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Lowest-volume-tier spot taker fees published by the venues in 2024, in bps; set your own tier.
DEFAULT_TAKER_FEES_BPS: Mapping[str, float] = {"binance": 10.0, "coinbase": 60.0, "kraken": 40.0}
DEFAULT_ALIASES: Mapping[str, str] = {"XBT": "BTC", "USDT": "USD", "USDC": "USD"}
# Quote currencies recognised at the end of a symbol written without a separator (Binance's BTCUSDT).
KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USD", "EUR", "GBP", "TRY", "BRL", "BTC", "ETH", "BNB")
_QUOTES_LONGEST_FIRST = sorted(KNOWN_QUOTES, key=len, reverse=True)


@dataclass(frozen=True)
class Quote:
    """One instrument's best bid and offer, and when it was received (ns)."""

    instrument: str
    ts: int
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float

    @property
    def usable(self) -> bool:
        """Both sides present with positive finite prices and sizes, and not crossed on its own venue."""
        values = (self.bid_price, self.bid_size, self.ask_price, self.ask_size)
        return all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in values) and (
            self.bid_price < self.ask_price
        )


@dataclass(frozen=True)
class ArbitrageRules:
    """Which venues are compared (those with a taker fee), their fees in bps, and the currency aliases."""

    taker_fees_bps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TAKER_FEES_BPS))
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALIASES))

    def asset(self, instrument: str) -> str | None:
        """The common asset ``BASE/QUOTE`` of an instrument, or None when it is not compared."""
        exchange, _, symbol = instrument.partition(":")
        if exchange not in self.taker_fees_bps or not symbol:
            return None
        pair = split_symbol(symbol.upper())
        if pair is None:
            return None
        base, quote = (self.aliases.get(side, side) for side in pair)
        return f"{base}/{quote}"


@dataclass(frozen=True)
class Opportunity:
    asset: str
    buy_instrument: str  # lift its ask
    sell_instrument: str  # hit its bid
    buy_price: float
    sell_price: float
    size: float
    gross_bps: float
    net_bps: float
    net_profit: float  # in the quote currency, for `size`
    buy_fee_bps: float
    sell_fee_bps: float
    buy_quote_age_ms: float
    sell_quote_age_ms: float


def split_symbol(symbol: str) -> tuple[str, str] | None:
    """(base, quote) of a symbol: at its ``-`` or ``/``, else by the longest known quote it ends with."""
    for separator in ("-", "/"):
        base, found, quote = symbol.partition(separator)
        if found:
            return (base, quote) if base and quote and separator not in quote else None
    for quote in _QUOTES_LONGEST_FIRST:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return None


def markets(
    quotes: Iterable[Quote], rules: ArbitrageRules, now_ns: int | None = None, max_age_ms: float | None = None
) -> dict[str, list[Quote]]:
    """The usable quotes of compared instruments, by common asset (sorted), each list by instrument; with
    ``max_age_ms``, only quotes received at most that long before ``now_ns``."""
    found: dict[str, list[Quote]] = {}
    for quote in quotes:
        asset = rules.asset(quote.instrument)
        fresh = max_age_ms is None or now_ns is None or (now_ns - quote.ts) / 1e6 <= max_age_ms
        if asset is not None and quote.usable and fresh:
            found.setdefault(asset, []).append(quote)
    return {asset: sorted(found[asset], key=lambda q: q.instrument) for asset in sorted(found)}


def find_opportunities(
    quotes: Iterable[Quote], now_ns: int, rules: ArbitrageRules | None = None, max_age_ms: float | None = None
) -> list[Opportunity]:
    """Every pair of venues quoting the same asset where one's bid is above the other's ask, best net edge
    first. Quote ages are measured from ``now_ns``; with ``max_age_ms``, older quotes are left out."""
    rules = rules or ArbitrageRules()
    found = []
    for asset, group in markets(quotes, rules, now_ns, max_age_ms).items():
        for buy, sell in itertools.permutations(group, 2):
            if _venue(buy) != _venue(sell) and sell.bid_price > buy.ask_price:
                found.append(_opportunity(asset, buy, sell, rules, now_ns))
    return sorted(found, key=lambda o: (-o.net_bps, o.buy_instrument, o.sell_instrument))


def parse_mapping(text: str, what: str) -> dict[str, str]:
    """``"a=1, b=2"`` as {"a": "1", "b": "2"}; ``what`` names the setting in errors."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not key or not value:
            raise ValueError(f"{what}: {item!r} is not NAME=VALUE (expected e.g. 'binance=10,coinbase=60')")
        out[key] = value
    return out


def rules_with(fees_text: str = "", aliases_text: str = "") -> ArbitrageRules:
    """The default rules with overrides written as ``venue=bps,...`` and ``FROM=TO,...`` (``USDT=USDT`` undoes
    an alias)."""
    fees = dict(DEFAULT_TAKER_FEES_BPS)
    for venue, text in parse_mapping(fees_text, "taker fees").items():
        try:
            fee = float(text)
        except ValueError:
            fee = math.nan
        if not 0 <= fee < 10_000:
            raise ValueError(f"taker fees: {venue}={text!r} is not a number of bps from 0 to 10000")
        fees[venue] = fee
    aliases = dict(DEFAULT_ALIASES)
    aliases.update({k.upper(): v.upper() for k, v in parse_mapping(aliases_text, "aliases").items()})
    return ArbitrageRules(fees, aliases)


def _venue(quote: Quote) -> str:
    return quote.instrument.partition(":")[0]


def _opportunity(asset: str, buy: Quote, sell: Quote, rules: ArbitrageRules, now_ns: int) -> Opportunity:
    buy_fee, sell_fee = rules.taker_fees_bps[_venue(buy)], rules.taker_fees_bps[_venue(sell)]
    ask, bid = buy.ask_price, sell.bid_price
    net_per_unit = bid * (1 - sell_fee / 1e4) - ask * (1 + buy_fee / 1e4)
    size = min(buy.ask_size, sell.bid_size)
    return Opportunity(
        asset=asset,
        buy_instrument=buy.instrument,
        sell_instrument=sell.instrument,
        buy_price=ask,
        sell_price=bid,
        size=size,
        gross_bps=1e4 * (bid - ask) / ask,
        net_bps=1e4 * net_per_unit / ask,
        net_profit=size * net_per_unit,
        buy_fee_bps=buy_fee,
        sell_fee_bps=sell_fee,
        buy_quote_age_ms=(now_ns - buy.ts) / 1e6,
        sell_quote_age_ms=(now_ns - sell.ts) / 1e6,
    )
