"""``quantumflow api``: its options, its clear errors, and the real command serving a store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_api import flow_store_fixture  # noqa: F401 (fixture)
from test_api_hardening import closed_port
from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def test_help_names_the_options():
    result = CliRunner().invoke(app, ["api", "--help"])
    assert result.exit_code == 0
    assert all(option in result.output for option in ("--port", "--host", "--store", "--workers", "--access-log"))


def test_a_bad_store_url_or_setting_stops_it_before_serving(monkeypatch):
    result = CliRunner().invoke(app, ["api", "--store", "postgres://db"])
    assert result.exit_code == 2 and "bad store URL" in result.output
    monkeypatch.setenv("QF_API_RATE_LIMIT", "lots")
    result = CliRunner().invoke(app, ["api"])
    assert result.exit_code == 2 and "QF_API_RATE_LIMIT" in result.output


def started_api(flow_store: str, workers: int, log: Path) -> tuple[subprocess.Popen, int, httpx.Response]:
    """``quantumflow api`` on a free port, its stderr in ``log``, once /health answers: the process, its port
    and that answer. A port picked free may be taken by someone else before the server binds it: it is then
    started again on another."""
    for attempt in range(3):
        port = closed_port()
        command = [sys.executable, "-m", "cli.main", "api", "--port", str(port), "--store", flow_store]
        command += ["--workers", str(workers)]
        with log.open("w") as err:
            server = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=err
            )
        deadline = time.monotonic() + 60
        while server.poll() is None and time.monotonic() < deadline:
            try:
                return server, port, httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
            except httpx.TransportError:
                time.sleep(0.2)
        server.kill()
        server.communicate()
        said = log.read_text()
        if attempt == 2 or "the port is in use" not in said:
            pytest.fail(f"the API did not start: {said}")


@pytest.mark.parametrize("workers", [1, 2])
def test_the_command_serves_the_store_until_interrupted(flow_store, workers, tmp_path):
    server, port, health = started_api(flow_store, workers, tmp_path / "api.err")
    try:
        assert health.status_code == 200 and health.json()["store"] == flow_store
        assert httpx.get(f"http://127.0.0.1:{port}/v1/book/binance:BTCUSDT").json()["instrument"] == "binance:BTCUSDT"
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=20)
    assert server.returncode == 0, (tmp_path / "api.err").read_text()
    processes = f", {workers} processes" if workers > 1 else ""
    assert f"QuantumFlow API on http://localhost:{port}/docs, store {flow_store}{processes} (Ctrl-C" in out.decode()
