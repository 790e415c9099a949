"""Headless Chromium for the browser tests, driven by Playwright; it never downloads a browser of its own.

The browser is ``QF_CHROMIUM``, else Debian's ``/usr/bin/chromium`` (`apt-get install chromium`); the tests
that need it skip, saying so, when neither exists.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
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
PORT_TAKEN = ("the port is in use", "Address already in use")  # said by check_port, or by the server's bind


def launched_chromium() -> Iterator:
    """A Playwright browser (for a module-scoped fixture); skips the module when there is none to drive."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser test needs Chromium at {CHROMIUM} (apt-get install chromium, or set QF_CHROMIUM)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def served(args: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``python -m ARGS... --port P`` (a dashboard command) started on a free port, its output in ``log``, once
    its page answers; the process and the page's address. A port picked free may be taken by someone else
    before the command binds it: it is then started again on another."""
    for attempt in range(3):
        process, url = _start(args, log, env)
        if _answers(process, url):
            return process, url
        process.kill()
        process.wait()
        said = log.read_text()
        if attempt == 2 or not any(taken in said for taken in PORT_TAKEN):
            pytest.fail(f"the page did not start; its log:\n{said}")


def _answers(process: subprocess.Popen, url: str) -> bool:
    """Whether the page at ``url`` answers before ``process`` ends or a minute passes."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _start(args: list[str], log: Path, env: dict[str, str] | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", *args, "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}/"


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
