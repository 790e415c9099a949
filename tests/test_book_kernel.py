"""The book's compiled loop (``operators/_book_kernel.c``) leaves each side of a book as the Python loop
(``operators.book.python_apply_changes``) does, bit for bit: the same dict, in the same order, and the same
ranked keys, on generated sides and changes (ranked whole or only at the top, prices and quantities of any
type), and it fails where the Python loop fails."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.book import BookSide, python_apply_changes

compiled = pytest.importorskip("operators._book_kernel", reason="the compiled loop was not built").apply_changes

NAN = math.nan
GRID = [round(100.0 + 0.5 * i, 1) for i in range(24)]
prices = st.sampled_from(GRID) | st.floats(1e-3, 1e6) | st.integers(1, 200) | st.just(NAN)
sizes = st.sampled_from([0.0, -0.0, 0, 1, 0.5, NAN]) | st.floats(allow_nan=True, allow_infinity=True)
pairs = st.tuples(prices, sizes) | st.lists(prices, min_size=2, max_size=2)  # lists as orjson gives them
sides = st.dictionaries(st.sampled_from(GRID) | st.floats(1e-3, 1e6), st.floats(1e-6, 1e6), max_size=30)


def side_of(levels: dict, bids: bool, unranked: int) -> BookSide:
    """A side of ``levels`` with its ``unranked`` worst keys left out of the ranking (a floor above them)."""
    side = BookSide(levels.items(), 1.0 if bids else -1.0)
    if 0 < unranked < len(side.ranked):
        del side.ranked[:unranked]
        side.floor = side.ranked[0]
    return side


def state(side: BookSide) -> str:
    return repr((list(side.levels.items()), side.ranked))  # repr: -0.0, NaN and int against float


@settings(max_examples=500, deadline=None)
@given(sides, st.booleans(), st.integers(0, 30), st.lists(pairs, max_size=20))
def test_the_compiled_loop_leaves_each_side_as_the_python_loop(levels, bids, unranked, changes):
    by_python, by_c = side_of(levels, bids, unranked), side_of(levels, bids, unranked)
    python_apply_changes(by_python.levels, by_python.ranked, by_python.floor, bids, changes)
    compiled(by_c.levels, by_c.ranked, by_c.floor, bids, changes)
    assert state(by_c) == state(by_python)


@pytest.mark.parametrize(
    ("changes", "error"),
    [([(1.0, 2.0, 3.0)], ValueError), ([(1.0,)], ValueError), ([1.0], TypeError), (None, TypeError)],
)
def test_the_compiled_loop_fails_where_the_python_loop_fails(changes, error):
    for apply in (python_apply_changes, compiled):
        with pytest.raises(error):
            apply({}, [], -math.inf, True, changes)


def test_a_change_is_set_on_the_objects_given():
    levels, ranked = {}, []
    price, quantity = 101.5, 2.0
    compiled(levels, ranked, -math.inf, False, [(price, quantity)])
    ((key, value),) = levels.items()
    assert key is price and value is quantity and ranked == [-101.5]


class _Growing(float):
    """A price whose hash appends changes to the list being applied, as Python code run by the loop may."""

    changes: ClassVar[list] = []

    def __hash__(self) -> int:
        if len(self.changes) < 5:
            self.changes.append((float(len(self.changes) + 10), 1.0))
        return float.__hash__(self)


class _Clearing(float):
    changes: ClassVar[list] = []

    def __hash__(self) -> int:
        self.changes.clear()
        return float.__hash__(self)


def _failing_after_one():
    yield (1.0, 1.0)
    raise KeyError("stop")


@pytest.mark.parametrize(
    "case",
    [
        "growing",
        "clearing",
        "a generator that fails",
        "an unorderable ranked key",
    ],
)
def test_the_compiled_loop_leaves_what_the_python_loop_leaves_when_python_code_interferes(case):
    def arguments():
        if case == "growing":
            _Growing.changes = [(_Growing(1.0), 1.0)]
            return {}, [], -math.inf, True, _Growing.changes
        if case == "clearing":
            _Clearing.changes = [(_Clearing(1.0), 1.0)] + [(float(i), 1.0) for i in range(2, 1000)]
            return {}, [], -math.inf, True, _Clearing.changes
        if case == "a generator that fails":
            return {}, [], -math.inf, True, _failing_after_one()
        return {}, ["x"], -math.inf, True, [(1.0, 1.0)]  # insort fails before the dict is written

    outcomes = []
    for apply in (python_apply_changes, compiled):
        levels, ranked, *rest = arguments()
        try:
            apply(levels, ranked, *rest)
            error = None
        except Exception as raised:  # the type is what is compared
            error = type(raised)
        outcomes.append((error, repr(list(levels.items())), repr(ranked)))
    assert outcomes[1] == outcomes[0]
