"""The command line, run as a user would."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "quantumflow"


def run(*args, cwd=None, env=None):
    return subprocess.run(
        [str(BIN), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["replay"],
        ["bench"],
        ["feeds"],
        ["run"],
        ["simulate"],
        ["micro-price"],
        ["features"],
        ["report"],
        ["dashboard", "esg"],
    ],
)
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0 and "Usage: quantumflow" in result.stdout


def test_the_list_of_commands_gives_each_commands_first_paragraph_as_one_run_of_text():
    """A docstring's line breaks do not reach the list (it printed "validation," and "test)" on two lines)."""
    listed = run("--help", env={"COLUMNS": "400"}).stdout
    assert "(split in time: train, validation, test), save the checkpoints" in listed
    assert "never seen in training (--train, --test), or walk forward" in listed


def test_replay_prints_a_summary_and_writes_json(simulated_recording, tmp_path):
    out = tmp_path / "summary.json"
    result = run("replay", str(simulated_recording / "binance_btcusdt.gz"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((simulated_recording / "manifest.json").read_text())
    written = next(f["messages"] for f in manifest["files"] if f["file"] == "binance_btcusdt.gz")
    assert f"{written:,} messages" in result.stdout
    assert "dead letters: 0" in result.stdout and "decoder errors: 0" in result.stdout
    summary = json.loads(out.read_text())
    (instrument,) = summary["instruments"]
    assert instrument["instrument"] == "binance:BTCUSDT" and instrument["state"] == "live"
    assert instrument["top_of_book"]["bid_price"] < instrument["top_of_book"]["ask_price"]
    assert len(instrument["levels"]["bid_prices"]) == 10


def test_replay_under_the_wrong_feed_says_every_message_was_a_dead_letter(simulated_recording):
    right = run("replay", str(simulated_recording / "binance_btcusdt.gz"))
    wrong = run("replay", str(simulated_recording / "binance_btcusdt.gz"), "--feed", "coinbase")
    assert right.returncode == 0 and "dead letter" not in right.stderr
    assert wrong.returncode == 0, wrong.stderr
    assert "every message was a dead letter: is the wire protocol right? (--feed" in wrong.stderr


def test_replay_of_a_missing_file_is_a_clear_error(tmp_path):
    result = run("replay", str(tmp_path / "nope.gz"))
    assert result.returncode == 2 and "no such recording file" in result.stderr


def test_replay_of_a_file_in_no_known_format_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    result = run("replay", str(junk))
    assert result.returncode == 2 and "not a recording QuantumFlow knows" in result.stderr


def test_unknown_feed_is_a_clear_error(simulated_recording):
    result = run("replay", str(simulated_recording / "binance_btcusdt.gz"), "--feed", "nyse")
    assert result.returncode == 2 and "unknown feed 'nyse'" in result.stderr


def test_bench_json_reports_both_rates(simulated_recording):
    recording = simulated_recording / "coinbase_level2_btc-usd.gz"
    result = run("bench", str(recording), "--repeats", "1", "--no-models-cost", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    with gzip.open(recording, "rt") as lines:
        assert figures["messages"] == sum(1 for _ in lines)
    assert figures["decode_only_msgs_per_s"] > 0 and figures["book_msgs_per_s"] > 0
    assert figures["compiled"] is True
    assert figures["ratio"] == pytest.approx(figures["book_msgs_per_s"] / figures["decode_only_msgs_per_s"])
    # parse, and parse + sync + book without features: each its own rate and ratio to decode-only
    for stage in ("parse", "sync_book"):
        assert figures[f"{stage}_msgs_per_s"] > 0
        ratio = figures[f"{stage}_msgs_per_s"] / figures["decode_only_msgs_per_s"]
        assert figures[f"{stage}_ratio"] == pytest.approx(ratio)
    # every in-process pass parsed the same events from the same messages
    assert figures["events"] > 0
    for stage in ("parse", "sync_book", "book"):
        per_message = figures[f"{stage}_events_per_s"] / figures[f"{stage}_msgs_per_s"]
        assert per_message == pytest.approx(figures["events"] / figures["messages"], rel=1e-12)


def test_run_with_no_recording_simulates_one_and_fills_the_store(tmp_path):
    """The main job on a fresh machine: nothing but the project."""
    env = {"QF_DATA_DIR": str(tmp_path), "QF_STORE": "", "QF_MICRO_PRICE": ""}
    result = run("run", "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["rows"]["features"] > 10_000 and summary["rows"].get("dead_letters", 0) == 0
    assert (tmp_path / "simulated" / "manifest.json").is_file()
    assert set(json.loads((tmp_path / "micro_price.json").read_text())) == {"binance:BTCUSDT", "coinbase:BTC-USD"}
    assert (tmp_path / "quantumflow.db").is_file()
    # no models there: small ones were trained on the simulated recording, and they predicted
    assert (tmp_path / "models" / "bayes.pkl").is_file() and (
        tmp_path / "models" / "report" / "confusion.png"
    ).is_file()
    assert summary["rows"]["predictions"] > summary["rows"]["features"]
    assert summary["warnings"] == []  # the models were trained on this very recording
    # the Binance file alone, without the simulator's manifest: as far as anyone can tell, a recorded one
    copied = tmp_path / "copied" / "binance.gz"
    copied.parent.mkdir()
    copied.write_bytes(next((tmp_path / "simulated").glob("binance*")).read_bytes())
    result = run("run", str(copied), env=env)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert (
        f"warning: recorded binance:BTCUSDT is predicted by the models in {tmp_path / 'models'}, trained on "
        "simulated binance:BTCUSDT, simulated coinbase:BTC-USD:" in said
    )
    assert "is predicted by the models in" not in result.stderr  # said once, as it happened
    # and the online state the first run saved has learned this file's labels: not restored
    # (the volatility forecaster's state, saved beside it, neither)
    assert said.count("warning:") == 3 and said.count("warning: binance:BTCUSDT: not restoring the online state") == 2
    assert "binance_BTCUSDT.volatility.pkl" in said


def test_evaluate_trains_on_one_recording_and_tests_on_the_next(simulated_recording, tmp_path):
    with gzip.open(simulated_recording / "binance_btcusdt.gz", "rb") as source:
        lines = source.readlines()
    cut = len(lines) * 2 // 3
    for name, part in (("first.gz", lines[:cut]), ("second.gz", lines[cut:])):
        with gzip.open(tmp_path / name, "wb") as out:
            out.writelines(part)
    options = ("--epochs", "1", "--window", "8", "--horizons", "10,2s", "--out", str(tmp_path / "eval"), "--json")
    result = run("evaluate", "--train", str(tmp_path / "first.gz"), "--test", str(tmp_path / "second.gz"), *options)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    models = {"lstm", "attention_lstm", "transformer", "bayes", "logistic"}
    assert set(metrics) == models | {"mixture", "stacking", "hedge", "ensemble", "majority"}
    assert set(metrics["ensemble"]) == {"10", "2s"} and 0 < metrics["ensemble"]["10"]["macro_f1"] <= 1
    assert {p.name for p in (tmp_path / "eval").iterdir()} >= {"confusion.png", "training_curves.png", "results.json"}
    result = run("evaluate", "--train", str(tmp_path / "first.gz"), "--test", str(tmp_path / "none.gz"))
    assert result.returncode == 2 and "no such recording" in result.stderr


def test_run_rejects_a_bad_store_url_and_a_missing_recording(simulated_recording, tmp_path):
    result = run("run", str(tmp_path / "nope.gz"))
    assert result.returncode == 2 and "no such recording" in result.stderr
    result = run("run", str(simulated_recording), "--store", "postgres://somewhere")
    assert result.returncode == 2 and "sqlite:///" in result.stderr


def test_bench_json_has_the_flow_figures(simulated_recording):
    result = run(
        "bench",
        str(simulated_recording / "binance_btcusdt.gz"),
        "--repeats",
        "1",
        "--no-models-cost",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["flow_events_per_s"] > 0 and figures["flow_latency_p99_ms"] >= figures["flow_latency_p50_ms"] > 0
    assert figures["flow_ratio"] == pytest.approx(figures["flow_events_per_s"] / figures["decode_only_msgs_per_s"])
    # a store pass's ratio is to the decode-only pass beside it; decoding and storing is slower than storing
    assert figures["store_events_per_s"] > 0 and 0 < figures["flow_ceiling_ratio"] < figures["store_ratio"]


def test_the_ceiling_is_a_flow_that_only_decodes_and_stores():
    from bench.books import ceiling_ratio

    # 100 messages decoded in 1 s (100/s), their rows stored in 3 s: 4 s a run, a quarter of the rate
    assert ceiling_ratio(1.0, 3.0, 100, 100) == pytest.approx(0.25)
    assert ceiling_ratio(1.0, 3.0, 100, 200) == pytest.approx(0.5)  # two events a message: twice the events/s


def test_bench_prints_each_pass_beside_decode_only(simulated_recording):
    result = run("bench", str(simulated_recording / "binance_btcusdt.gz"), "--repeats", "1", "--no-models-cost")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.endswith("x decode-only")]
    assert [row[0] for row in rows] == ["decode", "parse:", "book:", "keyed", "whole", "store"]
    assert "decoding and storing alone would reach" in result.stdout
    assert rows[0][-3] == "1.00" and all(float(row[-3]) > 0 for row in rows)
    assert "C passes: built" in result.stdout  # the figures are those of the compiled passes


def test_bench_on_a_cut_recording_says_so_once(simulated_recording, tmp_path):
    """Every pass reads the file again; the warning that it breaks off is said the first time only."""
    whole = (simulated_recording / "binance_btcusdt.gz").read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    result = run("bench", str(cut), "--repeats", "2", "--no-models-cost")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("the gzip stream breaks off") == 1


def test_a_horizon_with_a_handful_of_test_labels_is_flagged():
    from cli.models import MIN_LABELS, few_labels

    metrics = {"hedge": {"10": {"n": 1_111}, "1s": {"n": MIN_LABELS}, "10s": {"n": 2}}, "majority": {}}
    assert few_labels(metrics) == [
        "warning: only 2 test labels at horizon 10s (the test part is too short for it): its figures say nothing"
    ]
