"""``quantumflow report``, run as a user runs it: every picture written and shown in one page that
works on its own, on the simulated recording with models, on a real recording, and one line for
each kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from browser import TIMEOUT_MS, launched_chromium
from pipeline_runs import quantumflow

from store import open_store

MARKET = ("depth_heatmap", "ofi", "profile", "correlations")
MODELS = ("training_curves", "confusion", "calibration", "ensemble_weights")
REAL = "binance/spot_btcusdt_20240808.gz"


def report(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        quantumflow("report", *args),
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1", "COLUMNS": "200"},
        timeout=600,
    )


def written(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line(result: subprocess.CompletedProcess, status: int, *words: str) -> None:
    assert result.returncode == status, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr


@pytest.fixture(scope="module")
def browser():
    yield from launched_chromium()


@pytest.fixture(scope="module")
def simulated_report(simulated_recording, simulated_models, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report")
    return out, written(report(simulated_recording, "--models", simulated_models.folder, "--out", out, "--json"))


def test_the_simulated_recording_with_models_gives_every_picture(simulated_report):
    out, summary = simulated_report
    assert summary["instruments"] == ["binance:BTCUSDT", "coinbase:BTC-USD"]
    expected = {f"{name}_{key}.png" for name in ("binance_btcusdt", "coinbase_btc_usd") for key in MARKET}
    expected |= {f"models_{key}.png" for key in MODELS}
    assert {Path(p).name for p in summary["pngs"]} == expected
    for name in expected:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["missing"] == []
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(expected)
    # the models' pictures are drawn from the numbers in results.json, captioned with them
    assert "Best validation log-loss: lstm" in page and "Expected calibration error" in page
    assert "As drawn by the evaluation" not in page


def test_the_page_shows_every_image_in_a_browser_after_it_is_moved(simulated_report, browser, tmp_path):
    out, summary = simulated_report
    moved = tmp_path / "elsewhere.html"  # alone: the images travel inside it
    moved.write_bytes((out / "report.html").read_bytes())
    page = browser.new_page()
    page.goto(moved.as_uri(), timeout=TIMEOUT_MS)
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
    assert len(images) == len(summary["pngs"])
    assert all(complete and width > 100 and height > 100 for complete, width, height in images), images
    assert page.locator("figcaption").count() == len(images)
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    page.close()


def test_a_missing_evaluation_is_said_on_the_page(simulated_recording, tmp_path):
    store = tmp_path / "store.db"
    from pipeline_runs import replay

    replay([simulated_recording / "binance_btcusdt.gz"], f"sqlite:///{store}")
    summary = written(
        report("--store", f"sqlite:///{store}", "--models", tmp_path, "--out", tmp_path / "out", "--json")
    )
    assert len(summary["pngs"]) == len(MARKET)
    assert len(summary["missing"]) == 1 and "no model evaluation in" in summary["missing"][0]
    assert "no model evaluation in" in (tmp_path / "out" / "report.html").read_text()


def test_a_real_recording_gives_every_market_picture(shared_data, tmp_path):
    recording = shared_data / REAL
    if not recording.is_file():
        pytest.skip(f"{recording} is absent")
    summary = written(report(recording, "--models", tmp_path, "--out", tmp_path / "out", "--json"))
    assert summary["instruments"] == ["binance:BTCUSDT"]
    assert sorted(Path(p).name for p in summary["pngs"]) == sorted(f"binance_btcusdt_{key}.png" for key in MARKET)
    for path in summary["pngs"]:
        assert Path(path).stat().st_size > 10_000
    assert (tmp_path / "out" / "report.html").stat().st_size > 40_000


def test_bad_input_is_one_line(simulated_recording, tmp_path):
    out = tmp_path / "out"
    one_line(report(tmp_path / "nothing.gz", "--out", out), 2, "nothing.gz")
    one_line(report("--store", f"sqlite:///{tmp_path / 'none.db'}", "--out", out), 1, "no store at", "none.db")
    assert not out.exists()  # neither made the folder of a report that could not start
    empty = tmp_path / "empty.db"
    open_store(f"sqlite:///{empty}").check()  # the tables, no rows
    one_line(report("--store", f"sqlite:///{empty}", "--out", out), 1, "holds no rows")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    one_line(report(simulated_recording, "--out", blocker / "out"), 1, "cannot write in the folder")
    one_line(report(simulated_recording, "--models", tmp_path / "no-models", "--out", out), 2, "--models")
    one_line(report(simulated_recording, "--store", f"sqlite:///{empty}", "--out", out), 2, "not both")
    assert not empty.with_name("none.db").exists()
