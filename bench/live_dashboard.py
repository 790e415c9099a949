"""Live dashboard benchmark: the time from a book row committed to the store to its best bid on the page, and
the dashboard server's CPU, with 1 and with 5 browser sessions at the default 1 s refresh.

    python -m bench.live_dashboard [--rows 20] [--sessions 1,5] [--json]

The store is the simulated minute replayed with small models trained on it (so the page shows predictions
and scores, as in the main job). The server is ``quantumflow dashboard live`` in its own process; headless
Chromium (QF_CHROMIUM, else /usr/bin/chromium) opens the sessions. Each page watches its best bid every 10 ms
and notes when a new price appears; this process commits rows at random intervals and records when each
commit returned. Latency = first seen on a page - committed, over every row and page.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from dashboards.live_html import price
from dataflows.run import run_flow
from dataflows.run_settings import RunSettings
from dataflows.training import run_experiment
from models.train import Settings
from quantumflow.horizons import parse_horizons
from simulator import simulate
from store import open_store
from store.schema import TABLES

INSTRUMENT = "binance:BTCUSDT"
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("QF_CHROMIUM") or "/usr/bin/chromium")
WATCH_BID = """
() => {
  window.__seen = {};
  let root = null;
  const find = (node) => {
    const el = node.querySelector('[data-testid="ladder-bid-price-1"]');
    if (el) { root = node; return el; }
    for (const child of node.querySelectorAll('*')) {
      if (child.shadowRoot) { const found = find(child.shadowRoot); if (found) return found; }
    }
    return null;
  };
  setInterval(() => {
    const el = (root && root.querySelector('[data-testid="ladder-bid-price-1"]')) || find(document);
    if (el && !(el.textContent in window.__seen)) window.__seen[el.textContent] = Date.now();
  }, 10);
}
"""


@dataclass
class SessionsFigures:
    sessions: int
    rows: int
    seen: int  # (row, page) pairs seen on the page
    p50_ms: float
    p95_ms: float
    max_ms: float
    server_cpu: float  # share of one core while rows were written and shown


def filled_store(folder: Path) -> tuple[str, Path]:
    """A store of the simulated minute replayed with small models trained on it; (its URL, the models)."""
    recording, models = folder / "simulated", folder / "models"
    simulate(recording, seed=7, minutes=1)
    settings = Settings(parse_horizons("10,1s"), window=8, epochs=2, max_train_windows=4_000)
    run_experiment(
        [recording / "binance_btcusdt.gz"], settings, models / "report", save_models=models, say=lambda _: None
    )
    url = f"sqlite:///{folder / 'store.db'}"
    run_flow(
        RunSettings(tuple(sorted(recording.glob("*.gz"))), store=url, models=models, online_state_dir=folder / "online")
    )
    return url, models


def serve(url: str, models: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "QF_MODELS_DIR": str(models), "QF_LIVE_REFRESH_S": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cli.main", "dashboard", "live", "--port", str(port), "--store", url]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(address, timeout=5):
                return process, address
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"the dashboard did not start:\n{log.read_text()}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(browser, address: str, url: str, pid: int, sessions: int, rows: int, rng: random.Random) -> SessionsFigures:
    pages = []
    for _ in range(sessions):
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        page.set_default_timeout(60_000)
        page.goto(address)
        page.get_by_test_id("ladder-bid-price-1").wait_for()
        page.evaluate(WATCH_BID)
        pages.append(page)
    with open_store(url).reader() as reader:
        row = reader.latest("book", INSTRUMENT)
    names = TABLES["book"].names
    committed: dict[str, float] = {}
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    for k in range(rows):
        time.sleep(rng.uniform(0.5, 1.5))  # commits fall anywhere in the refresh cycle
        row = {**row, "ts": row["ts"] + 10**8, "seq": row["seq"] + 1, "bid_price_1": row["ask_price_1"] - 5 - k * 0.01}
        with open_store(url).writer() as writer:
            writer.write("book", [tuple(row[name] for name in names)])
        committed[price(row["bid_price_1"])] = time.time() * 1000
    time.sleep(3)  # the last row's way to the pages
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
    latencies = []
    for page in pages:
        seen = page.evaluate("() => window.__seen")
        latencies += [seen[text] - at for text, at in committed.items() if text in seen]
        page.close()
    ms = np.array(latencies) if latencies else np.array([np.nan])
    p50, p95 = np.percentile(ms, [50, 95])
    return SessionsFigures(sessions, rows, len(latencies), float(p50), float(p95), float(ms.max()), cpu)


def main(
    rows: Annotated[int, typer.Option(min=1, help="Book rows committed per measurement.")] = 20,
    sessions: Annotated[str, typer.Option(help="Browser session counts to measure, comma-separated.")] = "1,5",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure the live dashboard's commit-to-page latency and server CPU."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"needs Chromium at {CHROMIUM} (apt-get install chromium, or set QF_CHROMIUM)")
    counts = [int(n) for n in sessions.split(",")]
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        url, models = filled_store(Path(folder))
        process, address = serve(url, models, Path(folder) / "server.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
                figures = [measure(browser, address, url, process.pid, n, rows, rng) for n in counts]
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
    if as_json:
        print(json.dumps([asdict(f) for f in figures], indent=2))
        return
    print("Live dashboard: book row committed -> best bid on the page, 1 s refresh (simulated minute, with models)")
    print(f"{'sessions':>8} {'rows':>5} {'seen':>5} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'server CPU':>11}")
    for f in figures:
        print(
            f"{f.sessions:8} {f.rows:5} {f.seen:5} {f.p50_ms:7.0f} {f.p95_ms:7.0f} {f.max_ms:7.0f} "
            f"{100 * f.server_cpu:10.0f}%"
        )


if __name__ == "__main__":
    typer.run(main)
