"""The hot read path: the latest-prediction and latest-book answers kept in memory as ready JSON bytes.

A request for ``GET /v1/predictions/{instrument}/latest`` or ``GET /v1/book/{instrument}`` whose answer is
kept is answered here, below the metrics, CORS, rate-limit and body-size middleware, without routing,
validation or a store query. Anything else, and the first request for an answer, goes on to the app as
before; that request registers the answer, which a background task then reads from the store every
``refresh_s`` seconds (and right away when new), built by the routes' own code and serialized by the
response model, so a kept answer is the app's own answer, at most ``refresh_s`` (plus a query) old.
An answer that fails to build (unknown instrument, store down) loses its body, so the app answers it
with its usual error until it builds again; one nobody asked for in ``FORGET_S`` is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from api.horizons import StoredHorizons
from api.routes.market import latest_book_answer
from api.routes.predictions import latest_predictions_answer
from api.schemas import Book, LatestPredictions
from store import Reader
from store.base import MAX_HORIZONS
from store.schema import LEVELS

log = logging.getLogger("quantumflow.api")

FORGET_S = 60.0  # an answer nobody asked for this long is no longer refreshed
MAX_ANSWERS = 256  # distinct answers kept (instrument x query); past it, new ones go to the app every time
MAX_QUERIES = 4096  # raw (path, query string) forms remembered, whether they map to a kept answer or not
PREDICTIONS, BOOK = "/v1/predictions/", "/v1/book/"
LATEST = "/latest"
HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class Question:
    """A normalized request: which answer, with what arguments (horizons or levels)."""

    kind: str  # "predictions" or "book"
    instrument: str
    argument: tuple[str, ...] | int | None


@dataclass
class Answer:
    body: bytes | None  # None until first built
    headers: list[tuple[bytes, bytes]] | None
    asked: float  # monotonic time of the last request for it
    route: Any = None  # the app's route for it, once the app has answered it (metrics label answers by route)


Build = Callable[[Reader, Question], bytes]


def question_of(path: str, query: bytes) -> Question | None:
    """The question a request asks, if the fast path may answer it (a form it is sure to read as the app does)."""
    if path.startswith(PREDICTIONS) and path.endswith(LATEST):
        instrument = path[len(PREDICTIONS) : -len(LATEST)]
        if not instrument:
            return None
        pairs = _pairs(query)
        if pairs is None or any(name != "horizon" or not 1 <= len(value) <= 32 for name, value in pairs):
            return None
        if len(pairs) > MAX_HORIZONS:
            return None
        return Question("predictions", instrument, tuple(value for _, value in pairs) or None)
    if path.startswith(BOOK):
        instrument = path[len(BOOK) :]
        if not instrument:
            return None
        pairs = _pairs(query)
        if pairs is None or len(pairs) > 1:
            return None
        levels = LEVELS
        if pairs:
            name, value = pairs[0]
            if name != "levels" or not value.isascii() or not value.isdigit() or not 1 <= int(value) <= LEVELS:
                return None
            levels = int(value)
        return Question("book", instrument, levels)
    return None


def _pairs(query: bytes) -> list[tuple[str, str]] | None:
    try:
        return parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None


def answer_builder(known: StoredHorizons) -> Build:
    """Builds an answer with the route's own code, validated and serialized by the route's response model."""
    predictions, book = TypeAdapter(LatestPredictions), TypeAdapter(Book)

    def build(reader: Reader, question: Question) -> bytes:
        if question.kind == "book":
            return book.dump_json(
                book.validate_python(latest_book_answer(reader, question.instrument, question.argument))
            )
        horizons = None if question.argument is None else list(question.argument)
        answer = latest_predictions_answer(reader, known, question.instrument, horizons)
        return predictions.dump_json(predictions.validate_python(answer))

    return build


class LatestAnswers:
    """The kept answers of one server process and the task that refreshes them."""

    def __init__(
        self,
        run: Callable[[Callable[[Reader], Any]], Any],
        build: Build,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run = run  # StoreGateway.run: a query in a worker thread
        self.build = build
        self.refresh_s = refresh_s
        self.clock = clock
        self.questions: dict[tuple[str, bytes], Question | None] = {}
        self.answers: dict[Question, Answer] = {}
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._failing = False

    def answer_to(self, path: str, query: bytes) -> Answer | None:
        """The kept answer to this request (its body None until first built), noting its question when new;
        None for a request the fast path does not answer."""
        key = (path, query)
        question = self.questions.get(key, False)
        if question is False:
            if len(self.questions) >= MAX_QUERIES:
                return None
            question = self.questions[key] = question_of(path, query)
        if question is None:
            return None
        answer = self.answers.get(question)
        now = self.clock()
        if answer is None:
            if len(self.answers) >= MAX_ANSWERS:
                return None
            answer = self.answers[question] = Answer(None, None, now)
            self._ensure_refreshing(wake=True)
            return answer
        answer.asked = now
        self._ensure_refreshing(wake=False)
        return answer

    def _ensure_refreshing(self, wake: bool) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._refresh_forever(self._wake))
        if wake:
            self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _refresh_forever(self, wake: asyncio.Event) -> None:
        while True:
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.refresh_s)
            wake.clear()

    async def refresh(self) -> None:
        """Builds every answer asked for in the last FORGET_S in one store visit and forgets the others. One
        that fails to build (unknown instrument, store down) is kept without a body: the app answers it."""
        now = self.clock()
        for question in [q for q, a in self.answers.items() if now - a.asked > FORGET_S]:
            del self.answers[question]
        questions = list(self.answers)
        if not questions:
            return
        try:
            built = await self.run(lambda reader: [self._build_or_none(reader, q) for q in questions])
        except Exception as error:  # the store cannot be reached at all: every request goes to the app
            if not self._failing:
                log.warning("kept answers cannot be refreshed: %s", error)
            self._failing = True
            built = [None] * len(questions)
        else:
            self._failing = False
        for question, body in zip(questions, built, strict=True):
            answer = self.answers[question]
            answer.body = body
            answer.headers = None if body is None else [*HEADERS, (b"content-length", str(len(body)).encode())]

    def _build_or_none(self, reader: Reader, question: Question) -> bytes | None:
        try:
            return self.build(reader, question)
        except Exception:  # the app answers it, with its own error
            return None


class LatestAnswersPath:
    """ASGI middleware answering kept answers (GET only); everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, answers: LatestAnswers) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        answer = self.answers.answer_to(scope["path"], scope["query_string"])
        if answer is not None and answer.body is not None and answer.route is not None:
            scope["route"] = answer.route
            await send({"type": "http.response.start", "status": 200, "headers": answer.headers})
            await send({"type": "http.response.body", "body": answer.body})
            return
        await self.app(scope, receive, send)
        if answer is not None and answer.route is None:
            answer.route = scope.get("route")
