"""The garbage collector's settings while a flow runs in this process."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A run allocates many short-lived containers (rows, predictions): the collector's youngest generation is
# collected every this many allocations instead of Python's 700, the middle one 20 times rarer, and a full
# pass (tens of ms over the predictions waiting for labels, a stall a live feed's p99 sees) 1,000 times
# rarer still: hours apart, not seconds. Short-lived garbage is freed by reference counting meanwhile.
GC_THRESHOLD = (50_000, 20, 1_000)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """While the flow runs, what exists before it (modules, models: never garbage) is left out of the
    garbage collector's passes (``gc.freeze``) and the collector runs less often (``GC_THRESHOLD``): its
    full passes over the process's objects cost a run with predictions about a tenth of its time. Only in
    the main thread: a run in another thread leaves the process's collector as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
