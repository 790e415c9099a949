"""Request limits as plain ASGI middleware: body size (413) and per-client rate (429 with Retry-After)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import RateLimit

MAX_CLIENTS = 100_000  # rate-limit buckets kept; the least recently seen client is forgotten first


async def send_error(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuses a body over ``max_bytes`` with 413, by its Content-Length or, without one, by reading it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body over {self.max_bytes} bytes (QF_API_MAX_BODY_BYTES)"
        declared = dict(scope["headers"]).get(b"content-length", b"")  # the server has checked it is a number
        if declared.isdigit() and int(declared) > self.max_bytes:
            await send_error(send, 413, too_large)
            return
        # Read the body here (it is small), so that a stream longer than allowed is refused before the app sees it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await send_error(send, 413, too_large)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # what follows the body: a disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class TokenBuckets:
    """One token bucket per client: ``requests`` tokens, refilled at ``requests`` per ``period_s``."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(limit.requests)
        self.rate = limit.requests / limit.period_s  # tokens a second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when), least recently seen first

    def take(self, client: str) -> float:
        """0 if the client may go now (a token is spent), else the seconds until it may."""
        now = self.clock()
        tokens, when = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - when) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > MAX_CLIENTS:
            del self._buckets[next(iter(self._buckets))]
        return 0.0 if allowed else (1.0 - tokens) / self.rate


class RateLimiter:
    """Per-client rate limit on paths under ``prefix``; the client is its address (behind a proxy, uvicorn
    takes it from X-Forwarded-For when FORWARDED_ALLOW_IPS trusts the proxy)."""

    def __init__(self, app: ASGIApp, limit: RateLimit, prefix: str = "/v1/") -> None:
        self.app = app
        self.limit = limit
        self.prefix = prefix
        self.buckets = TokenBuckets(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            client = scope.get("client")
            wait = self.buckets.take(client[0] if client else "unknown")
            if wait > 0:
                retry = max(1, math.ceil(wait))
                detail = f"rate limit of {self.limit} exceeded; retry after {retry} s"
                await send_error(send, 429, detail, {"Retry-After": str(retry)})
                return
        await self.app(scope, receive, send)
