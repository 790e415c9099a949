"""Small hand-written messages of the venues the simulator does not play (Kraken, Coinbase Exchange,
Binance USD-M, LOBSTER), written as each venue documents them, so that the tests of their decoders and
books run on a clone without the real recordings."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from quantumflow.events import RawMessage

KRAKEN_PAIR = "XBT/USD"
KRAKEN_START_NS = 1_618_678_133_500_000_000  # 2021-04-17, as the real capture
LOBSTER_MESSAGE = "SYNT_2012-06-21_34200000_57600000_message_10.csv"
LOBSTER_ORDERBOOK = "SYNT_2012-06-21_34200000_57600000_orderbook_10.csv"


# -- Kraken: book-10 over websocket v1, every update carrying the CRC32 of the book after it -----


def kraken_checksum(asks: dict[str, str], bids: dict[str, str]) -> int:
    """Kraken's documented checksum: CRC32 of the 10 best asks (lowest first) then the 10 best bids
    (highest first), each price and volume as sent with the '.' and the leading zeros taken out."""

    def digits(text: str) -> str:
        return text.replace(".", "").lstrip("0")

    best_asks = sorted(asks.items(), key=lambda level: float(level[0]))[:10]
    best_bids = sorted(bids.items(), key=lambda level: -float(level[0]))[:10]
    return zlib.crc32("".join(digits(p) + digits(q) for p, q in best_asks + best_bids).encode())


def kraken_messages(updates: int = 6) -> list[RawMessage]:
    """A book-10 snapshot of XBT/USD, then ``updates`` updates (one level each, bids and asks in turn),
    each with the checksum of the book after it."""
    asks = {f"{60010 + i}.{i}0000": f"{1 + i}.50000000" for i in range(10)}
    bids = {f"{60000 - i}.{i}0000": f"{2 + i}.25000000" for i in range(10)}
    ts = KRAKEN_START_NS

    def stamp() -> str:
        return f"{ts // 10**9}.{ts % 10**9 // 1000:06d}"

    snapshot = [
        336,
        {"as": [[p, q, stamp()] for p, q in asks.items()], "bs": [[p, q, stamp()] for p, q in bids.items()]},
        "book-10",
        KRAKEN_PAIR,
    ]
    messages = [RawMessage("kraken", ts, json.dumps(snapshot, separators=(",", ":")).encode())]
    for n in range(updates):
        ts += 250_000_000
        side, book, key = (asks, "a", sorted(asks, key=float)[n % 3]) if n % 2 else (bids, "b", list(bids)[n % 3])
        side[key] = f"{0.1 + n:.8f}"
        update = [
            336,
            {book: [[key, side[key], stamp()]], "c": str(kraken_checksum(asks, bids))},
            "book-10",
            KRAKEN_PAIR,
        ]
        messages.append(RawMessage("kraken", ts, json.dumps(update, separators=(",", ":")).encode()))
    return messages


# -- Coinbase Exchange (the cryptofeed capture's feed): level2 and matches ---------------------


def coinbase_messages(product: str = "BTC-USD") -> list[RawMessage]:
    """A level2 snapshot of ``product`` (5 levels a side), two updates and a match."""
    start = 1_618_677_817_000_000_000
    snapshot = {
        "type": "snapshot",
        "product_id": product,
        "asks": [[f"{60010 + i}.00", f"{0.5 + i:.2f}"] for i in range(5)],
        "bids": [[f"{60000 - i}.00", f"{0.25 + i:.2f}"] for i in range(5)],
    }
    updates = [
        {"changes": [["buy", "60000.50", "0.40"]], "time": "2021-04-17T16:43:37.075687Z"},
        {"changes": [["sell", "60011.00", "0"]], "time": "2021-04-17T16:43:37.175687Z"},
    ]
    match = {
        "type": "match",
        "trade_id": 280232,
        "maker_order_id": "2a0da34e-61f7-4c36-88e5-c9dd15927b16",
        "taker_order_id": "3c82abaa-c01e-4608-be59-6a1e69742891",
        "side": "sell",
        "size": "0.01",
        "price": "60000.50",
        "product_id": product,
        "sequence": 177100030,
        "time": "2021-04-17T16:43:37.275687Z",
    }
    payloads = [snapshot, *({"type": "l2update", "product_id": product, **u} for u in updates), match]
    return [RawMessage("coinbase", start + i * 100_000_000, json.dumps(p).encode()) for i, p in enumerate(payloads)]


def binance_usdm_depth_update() -> RawMessage:
    """A USD-M futures diff, with the previous final update id (``pu``) the futures streams add."""
    data = {
        "e": "depthUpdate",
        "E": 1723161256299,
        "T": 1723161256298,
        "s": "BTCUSDT",
        "U": 5123107832006,
        "u": 5123107837557,
        "pu": 5123107831937,
        "b": [["61496.50", "0.010"], ["61510.90", "0.000"]],
        "a": [["61520.10", "1.211"]],
    }
    payload = json.dumps({"stream": "btcusdt@depth@0ms", "data": data}, separators=(",", ":")).encode()
    return RawMessage("binance_usdm", 1_723_161_255_030_314_667, payload, "BTCUSDT")


# -- LOBSTER: a message file and the orderbook file of 10 levels after each message -------------


def write_lobster_pair(folder: Path, rows: int = 600) -> Path:
    """A LOBSTER pair of ``rows`` rows (submissions, cancellations and executions at the touch, the
    book after each), written into ``folder``; the message file's path."""
    asks = [[5_860_000 + 100 * i, 100 + 10 * i] for i in range(10)]
    bids = [[5_850_000 - 100 * i, 200 + 10 * i] for i in range(10)]
    messages, books = [], []
    for row in range(rows):
        kind = (1, 3, 4)[row % 3]  # submission, deletion, execution of a visible order
        side, direction = (asks, -1) if row % 2 else (bids, 1)
        level = side[row % 4]
        size = 5 + row % 7
        level[1] += size if kind == 1 else -size
        if level[1] <= 0:
            level[1] = 50
        time = 34_200 + row * 0.015
        messages.append(f"{time:.9f},{kind},{1_000_000 + row},{size},{level[0]},{direction}")
        books.append(",".join(f"{a[0]},{a[1]},{b[0]},{b[1]}" for a, b in zip(asks, bids, strict=True)))
    (folder / LOBSTER_ORDERBOOK).write_text("\n".join(books) + "\n")
    path = folder / LOBSTER_MESSAGE
    path.write_text("\n".join(messages) + "\n")
    return path
