"""What the command line says when something goes wrong, run as a user runs it: a mistake, or a store,
port or folder that cannot be used, is exactly one line on stderr naming it and the cause, never a
traceback; an internal error is one line naming the log file that holds its traceback."""

from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import simulate

ROOT = Path(__file__).resolve().parent.parent


def quantumflow(*args: str, data: Path, env: dict | None = None, preexec_fn=None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "QF_DATA_DIR": str(data), "COLUMNS": "200", **(env or {})}
    environment.pop("QF_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=preexec_fn,
    )


def one_line(result: subprocess.CompletedProcess, status: int, *words: str) -> str:
    """The single line on stderr, checked to have the exit status and each of ``words``."""
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simulated")
    simulate(folder, seed=7, minutes=1)
    return folder


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# -- a store that cannot be used, found before the flow starts ------------------------------------


@pytest.mark.parametrize(
    ("where", "cause"),
    [
        ("folder", "is a folder, not a database file"),
        ("notes.txt", "is not a SQLite database"),
        ("notes.txt/q.db", "is a file, not a folder"),
        ("/proc/quantumflow/q.db", "cannot make the folder /proc/quantumflow"),
    ],
)
def test_run_into_a_sqlite_path_that_cannot_be_a_store(recording, tmp_path, where, cause):
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("notes\n")
    url = f"sqlite:///{tmp_path / where}"
    result = quantumflow("run", str(recording), "--store", url, data=tmp_path)
    one_line(result, 1, f"store {url} cannot be used", cause)


def test_run_into_a_questdb_with_nothing_listening(recording, tmp_path):
    port = closed_port()
    url = f"questdb://127.0.0.1:{port}"
    result = quantumflow("run", str(recording), "--store", url, data=tmp_path)
    one_line(result, 1, f"store {url} cannot be used", f"ILP/HTTP port 127.0.0.1:{port}", "Connection refused")


def test_a_bad_store_url_or_setting_is_a_usage_error(recording, tmp_path):
    result = quantumflow("run", str(recording), "--store", "postgres://db", data=tmp_path)
    one_line(result, 2, "bad store URL 'postgres://db'", "sqlite:///")
    url = f"sqlite:///{tmp_path / 'q.db'}"
    result = quantumflow("run", str(recording), "--store", url, data=tmp_path, env={"QF_STORE_RETRIES": "many"})
    one_line(result, 2, "QF_STORE_RETRIES='many'")


# -- a store that fails while the flow runs -------------------------------------------------------

STORE_FILE_LIMIT = 2_000_000  # bytes: the store's files outgrow it a few seconds into the recording


def small_files() -> None:
    """In the child: writing past the limit fails with EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (STORE_FILE_LIMIT, STORE_FILE_LIMIT))


def test_a_store_that_becomes_unwritable_stops_the_run_saying_where_it_got_to(recording, tmp_path):
    url = f"sqlite:///{tmp_path / 'store' / 'q.db'}"
    retries = {"QF_STORE_RETRIES": "2", "QF_STORE_BACKOFF_S": "0.01"}
    result = quantumflow("run", str(recording), "--store", url, data=tmp_path, env=retries, preexec_fn=small_files)
    line = one_line(result, 1, f"Error: store {url} failed while the flow ran", "3 tries", "events committed")
    assert "binance:BTCUSDT 2024-" in line and "replaying the same recordings again is safe" in line
    log = (tmp_path / "logs" / "quantumflow.log").read_text()
    assert log.count("retry") >= 2 and "Traceback" in log and "sqlite3." in log  # the cause is kept

    again = quantumflow("run", str(recording), "--store", url, "--json", data=tmp_path)
    assert again.returncode == 0, again.stderr


# -- servers: a store or a port that cannot be used -----------------------------------------------


def test_the_api_will_not_start_on_a_store_it_cannot_reach(tmp_path):
    port = closed_port()
    url = f"questdb://127.0.0.1:{closed_port()}?pg_port={port}"
    result = quantumflow("api", "--store", url, "--port", str(closed_port()), data=tmp_path)
    one_line(result, 1, f"store {url} cannot be used", f"PG wire port 127.0.0.1:{port}")


def test_the_api_and_the_dashboard_say_when_their_port_is_in_use(tmp_path, busy_port):
    store = f"sqlite:///{tmp_path / 'q.db'}"
    for command in (["api", "--store", store], ["dashboard", "esg"]):
        result = quantumflow(*command, "--port", str(busy_port), data=tmp_path)
        one_line(result, 1, f"cannot listen on 127.0.0.1:{busy_port}", "in use")
        assert result.stdout == ""  # nothing claimed to be served


# -- folders ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("out", "cause"), [("notes.txt/sim", "Not a directory"), ("/proc/sim", "No such file")])
def test_simulate_into_a_folder_it_cannot_write(tmp_path, out, cause):
    (tmp_path / "notes.txt").write_text("notes\n")
    folder = tmp_path / out
    result = quantumflow("simulate", "--out", str(folder), "--minutes", "0.1", data=tmp_path)
    one_line(result, 1, f"cannot write in the folder {folder}", cause)


# -- internal errors -------------------------------------------------------------------------------

BROKEN_REPLAY = """
import sys
import dataflows.replay, cli.main

def broken(*args, **kwargs):
    raise ZeroDivisionError("a bug")

cli.main.replay = broken
sys.argv[0] = "quantumflow"
cli.main.app()
"""


def test_an_internal_error_is_one_line_naming_the_log_with_its_traceback(recording, tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "QF_DATA_DIR": str(tmp_path)}
    files = [str(path) for path in sorted(recording.glob("*.gz"))]
    command = [sys.executable, "-c", BROKEN_REPLAY]
    result = subprocess.run([*command, "replay", *files], cwd=ROOT, env=environment, capture_output=True, text=True)
    log = tmp_path / "logs" / "quantumflow.log"
    one_line(result, 1, "Internal error: ZeroDivisionError: a bug", f"the traceback is in {log}", "--debug")
    logged = log.read_text()
    assert "Traceback" in logged and "in broken\nZeroDivisionError: a bug" in logged

    debug = subprocess.run(
        [*command, "--debug", "replay", *files], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert debug.returncode == 1 and "ZeroDivisionError" in debug.stderr and len(debug.stderr.splitlines()) > 1


BROKEN_WORK = """
import importlib, sys
module, name = importlib.import_module(sys.argv.pop(1)), sys.argv.pop(1)

def broken(*args, **kwargs):
    raise ValueError("bad shape in engine")

setattr(module, name, broken)
import cli.main
sys.argv[0] = "quantumflow"
cli.main.app()
"""


@pytest.mark.parametrize(
    ("broken", "args"),
    [
        (("simulator", "run"), ("simulate", "--out", "{tmp}/sim", "--minutes", "0.1")),
        (("dataflows.training", "build_dataset"), ("train", "{recording}", "--out", "{tmp}/m", "--epochs", "1")),
        (("dataflows.tuning", "prepare"), ("tune", "{recording}", "--out", "{tmp}/t", "--trials", "1")),
        (("bench.books", "bench_books"), ("bench", "{recording}/binance_btcusdt.gz", "--repeats", "1")),
    ],
    ids=["simulate", "train", "tune", "bench"],
)
def test_a_value_error_inside_the_work_is_an_internal_error_not_a_mistake(recording, tmp_path, broken, args):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "QF_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-c", BROKEN_WORK, *broken]
    args = [arg.format(tmp=tmp_path, recording=recording) for arg in args]
    result = subprocess.run([*command, *args], cwd=ROOT, env=environment, capture_output=True, text=True)
    log = tmp_path / "logs" / "quantumflow.log"
    one_line(result, 1, "Internal error: ValueError: bad shape in engine", f"the traceback is in {log}", "--debug")
    assert "in broken\nValueError: bad shape in engine" in log.read_text()

    debug = subprocess.run([*command, "--debug", *args], cwd=ROOT, env=environment, capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ValueError: bad shape in engine" in debug.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("replay", "{recording}", "--feed", "nope"), ("Invalid value for '--feed'", "see quantumflow replay --help")),
        (("run", "{recording}", "-w", "0"), ("'--workers'", "greater than or equal to 1")),
        (("nosuch",), ("No such command 'nosuch'", "see quantumflow --help")),
    ],
)
def test_a_bad_option_value_is_one_line_too(recording, tmp_path, args, words):
    args = [arg.format(recording=recording) for arg in args]
    one_line(quantumflow(*args, data=tmp_path), 2, *words)


def test_debug_keeps_a_mistake_one_line_with_its_status(tmp_path):
    result = quantumflow("--debug", "run", str(tmp_path / "nope.gz"), data=tmp_path)
    one_line(result, 2, "no such recording file or folder", "nope.gz")
    assert not (tmp_path / "quantumflow.db").exists()  # the recording is checked before the store is made


@pytest.mark.parametrize(
    ("out", "words"),
    [("{tmp}", ("--out", "is a folder, not a file")), ("/proc/x.json", ("--out /proc/x.json", "cannot write"))],
)
def test_replay_says_before_replaying_that_its_out_file_cannot_be_written(recording, tmp_path, out, words):
    result = quantumflow("replay", str(recording), "--out", out.format(tmp=tmp_path), data=tmp_path)
    one_line(result, 1, *words)


@pytest.mark.parametrize(
    "command",
    [
        ("train", "{market}"),
        ("evaluate", "--train", "{market}", "--test", "{other_market}"),
        ("tune", "{market}"),
    ],
)
def test_training_says_before_it_trains_that_its_out_folder_is_a_file(recording, tmp_path, command):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    market, other = recording / "binance_btcusdt.gz", recording / "coinbase_level2_btc-usd.gz"
    args = [arg.format(market=market, other_market=other) for arg in command]
    result = quantumflow(*args, "--out", str(taken), "--epochs", "1", data=tmp_path)
    one_line(result, 2, "notes.txt is a file, not a folder")
    assert taken.read_text() == "mine" and not (tmp_path / "models").exists()


def test_train_names_a_missing_recording_before_anything_else(tmp_path):
    result = quantumflow("train", str(tmp_path / "nope.gz"), data=tmp_path)
    one_line(result, 2, "no such recording file or folder", "nope.gz")
    assert result.stdout == ""  # not the settings first
    assert not (tmp_path / "models").exists()


def test_micro_price_says_before_fitting_that_its_out_file_cannot_be_written(recording, tmp_path):
    result = quantumflow("micro-price", str(recording / "binance_btcusdt.gz"), "--out", str(tmp_path), data=tmp_path)
    one_line(result, 1, f"--out {tmp_path} is a folder, not a file")


def test_training_names_a_horizon_the_recording_is_too_short_for(recording, tmp_path):
    result = quantumflow(
        "train", str(recording / "binance_btcusdt.gz"), "--out", str(tmp_path / "m"), "--horizons", "10,10s",
        "--epochs", "1", "--window", "4", data=tmp_path,
    )  # fmt: skip
    one_line(result, 2, "horizon 10s: no label matures in the test part", "--horizons")


def test_bench_on_a_folder_says_it_takes_one_recording_file(tmp_path):
    one_line(quantumflow("bench", str(tmp_path), data=tmp_path), 2, str(tmp_path), "is a folder", "one recording file")


def test_bench_says_what_is_wrong_with_its_models_before_it_measures(simulated_recording, tmp_path):
    recording = str(simulated_recording / "binance_btcusdt.gz")
    text = tmp_path / "models.txt"
    text.write_text("not models")
    for models, said in ((tmp_path / "nope", "no such folder"), (text, "is a file"), (tmp_path, "no trained models")):
        result = quantumflow("bench", recording, "--repeats", "1", "--models", str(models), data=tmp_path)
        one_line(result, 2, str(models), said)
        assert "decode-only" not in result.stdout  # nothing measured first


def bench_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("module", ["bench.live", "bench.hft_books"])
def test_the_benches_refuse_a_missing_recording_in_one_line(tmp_path, module):
    one_line(bench_module(module, str(tmp_path / "nope.gz")), 1, "error: no such recording file", "nope.gz")


def test_the_live_bench_refuses_a_folder_before_training_on_it(tmp_path):
    one_line(bench_module("bench.live", str(tmp_path), "--wall-s", "1"), 1, "is a folder", "one recording file")


def test_bench_counts_a_message_that_is_not_json_as_the_flow_does(recording, tmp_path):
    lines = gzip.decompress((recording / "binance_btcusdt.gz").read_bytes()).splitlines(keepends=True)[:300]
    bad = tmp_path / "one_bad_message.txt"
    bad.write_bytes(b"".join([*lines, lines[-1].split(b" ", 1)[0] + b" {not json\n"]))
    result = quantumflow("bench", str(bad), "--repeats", "1", "--no-models-cost", "--json", data=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["messages"] == 301
