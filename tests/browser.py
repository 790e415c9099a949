"""Headless Chromium for the browser tests, driven by Playwright; it never downloads a browser of its own.

The browser is ``QF_CHROMIUM``, else Debian's ``/usr/bin/chromium`` (`apt-get install chromium`); the tests
that need it skip, saying so, when neither exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = Path(os.environ.get("QF_CHROMIUM") or "/usr/bin/chromium")
# No background traffic: a machine without internet refuses it, many connections at a time.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


def launched_chromium() -> Iterator:
    """A Playwright browser (for a module-scoped fixture); skips the module when there is none to drive."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser test needs Chromium at {CHROMIUM} (apt-get install chromium, or set QF_CHROMIUM)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
