"""Recovery, exactly once in effect: ``quantumflow run --recovery DIR`` killed with SIGKILL at several
points and started again runs to the end with every table equal to an uninterrupted run's, predictions
included; a recovery folder of another run is refused in one line.

The runs are started by a ``RunStarter`` (how a run of a recording is started: a file replay, or the
recording published to Kafka and read from there), so that each source of the flow is put through the
same kills."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pipeline_runs import DATA_TABLES, in_background, quantumflow, replay, store_contents, wait_for_rows

from dataflows.kafka_broker import MockBroker
from dataflows.kafka_publish import publish
from dataflows.recovery import SNAPSHOT_FORMAT


@dataclass(frozen=True)
class RunStarter:
    """How to start ``quantumflow run`` on a recording: ``command(recording, store, *options)`` is its
    command line (the options are the run command's: --recovery, --speed, --models...)."""

    name: str
    command: Callable[..., list[str]]


def _file_replay(recording: Path, store: str, *options: object) -> list[str]:
    return quantumflow("run", recording, "--store", store, *options)


class _KafkaRun:
    """Runs reading the recording from the raw log of a broker of their own. A paced run (``--speed``)
    tails the topics while the recording is published at that speed, so that it is still running when
    killed; a run without it waits for the publication to end and stops at the topics' end."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.publishing: threading.Thread | None = None

    def command(self, recording: Path, store: str, *options: object) -> list[str]:
        options = list(options)
        speed = None
        if "--speed" in options:
            at = options.index("--speed")
            speed = float(options.pop(at + 1))
            options.pop(at)
        if self.publishing is None:
            self.publishing = threading.Thread(
                target=publish, args=([recording], self.bootstrap), kwargs={"speed": speed}
            )
            self.publishing.start()
        if speed is None:
            self.publishing.join()
            options.append("--stop-at-end")
        return quantumflow("run", "--kafka", self.bootstrap, "--store", store, *options)


STARTERS = ["file", "kafka"]


@pytest.fixture(params=STARTERS)
def starter(request) -> Iterator[RunStarter]:
    if request.param == "file":
        yield RunStarter("file", _file_replay)
        return
    with MockBroker() as broker:
        run = _KafkaRun(broker.bootstrap)
        yield RunStarter("kafka", run.command)
        if run.publishing is not None:
            run.publishing.join()


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)


@pytest.fixture(scope="module")
def uninterrupted(simulated_recording, simulated_models, tmp_path_factory):
    """The store of the simulated minute run once, whole, predicting from the checkpoints."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    url = f"sqlite:///{folder / 'store.db'}"
    summary = replay([simulated_recording], url, models=simulated_models.folder, online_state=folder / "state")
    return store_contents(url), summary


KILLS = {
    # name: (snapshot interval, table and rows to wait for before the kill)
    "before_the_first_snapshot": (600, "features", 500),
    "mid_way": (0.5, "features", 4_000),
    "during_predictions": (0.5, "predictions", 8_000),
}


@pytest.mark.parametrize("kill", KILLS)
def test_a_run_killed_and_started_again_equals_an_uninterrupted_one(
    kill, starter, simulated_recording, simulated_models, uninterrupted, tmp_path
):
    expected, whole = uninterrupted
    interval, table, rows = KILLS[kill]
    url = f"sqlite:///{tmp_path / 'store.db'}"
    options = (
        "--recovery",
        tmp_path / "recovery",
        "--snapshot-interval",
        interval,
        "--models",
        simulated_models.folder,
    )
    env = {"QF_ONLINE_STATE": str(tmp_path / "state")}
    process = in_background(starter.command(simulated_recording, url, *options, "--speed", 6), env)
    wait_for_rows(url, process, rows, table)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = store_contents(url)
    assert 0 < len(before[table]) < len(expected[table])

    resumed = _finish(in_background(starter.command(simulated_recording, url, *options, "--json"), env))
    after = store_contents(url)
    for name in DATA_TABLES:  # no row lost, none duplicated, none different
        assert after[name] == expected[name], name
    assert sum(map(len, after.values())) > 25_000 and after["predictions"]
    if kill == "before_the_first_snapshot":
        assert resumed["events_in"] == whole.events_in  # nothing to resume from: replayed from the start
    else:
        assert resumed["events_in"] < whole.events_in  # resumed from a snapshot, not from the start
    assert [warning for warning in resumed["warnings"] if "online state" in warning] == []


@pytest.fixture(scope="module")
def finished_recovery(simulated_recording, tmp_path_factory):
    """A recovery folder whose run (the simulated minute, no predictions) ran to its end."""
    folder = tmp_path_factory.mktemp("finished")
    url = f"sqlite:///{folder / 'store.db'}"
    command = _file_replay(simulated_recording, url, "--recovery", folder / "recovery", "--json")
    env = {"QF_MODELS_DIR": str(folder / "no_models"), "QF_ONLINE_STATE": str(folder / "state")}
    summary = _finish(in_background(command, env))
    assert summary["events_in"] > 10_000 and summary["warnings"] == []
    return folder / "recovery", url, env


def test_a_finished_run_started_again_has_nothing_left_to_do(simulated_recording, finished_recovery):
    recovery, url, env = finished_recovery
    command = _file_replay(simulated_recording, url, "--recovery", recovery, "--json")
    summary = _finish(in_background(command, env))
    assert summary["events_in"] == 0
    assert summary["warnings"] == [
        f"the run of recovery folder {recovery} had finished: nothing was left to do (give a new folder to run again)"
    ]


def test_a_recovery_folder_of_another_run_is_refused_in_one_line(simulated_recording, finished_recovery, tmp_path):
    recovery, url, env = finished_recovery
    other = tmp_path / "other_store.db"
    cases = {
        "workers": (
            _file_replay(simulated_recording, url, "--recovery", recovery, "-w", 2),
            "its workers: 1; this run's: 2",
        ),
        "recordings": (
            _file_replay(simulated_recording / "binance_btcusdt.gz", url, "--recovery", recovery),
            "its source: recordings",
        ),
        "store": (
            _file_replay(simulated_recording, f"sqlite:///{other}", "--recovery", recovery),
            f'its store: "sqlite:///{Path(url[10:])}"; this run\'s: "sqlite:///{other}"',
        ),
    }
    (tmp_path / "not_recovery").mkdir()
    (tmp_path / "not_recovery" / "notes.txt").write_text("mine")
    cases["not a recovery folder"] = (
        _file_replay(simulated_recording, url, "--recovery", tmp_path / "not_recovery"),
        "is not empty and has no manifest.json",
    )
    for name, (command, reason) in cases.items():
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env, "TQDM_DISABLE": "1"})
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (name, done.stderr)
        assert lines[0].startswith(f"Error: recovery folder {recovery if name != 'not a recovery folder' else ''}")
        assert reason in lines[0], (name, lines[0])


def test_a_recovery_folder_of_an_older_version_is_refused_in_one_line(simulated_recording, finished_recovery, tmp_path):
    recovery, url, env = finished_recovery
    older = tmp_path / "older"
    shutil.copytree(recovery, older)
    manifest = json.loads((older / "manifest.json").read_text())
    del manifest["snapshot_format"]  # as versions before the format was stamped wrote it
    (older / "manifest.json").write_text(json.dumps(manifest))
    command = _file_replay(simulated_recording, url, "--recovery", older)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env, "TQDM_DISABLE": "1"})
    assert done.returncode == 2 and done.stderr.strip() == (
        f"Error: recovery folder {older} holds snapshots of another QuantumFlow version "
        f"(their format 1, this version's {SNAPSHOT_FORMAT}): give a new folder"
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_run_asked_to_stop_commits_what_it_read_and_resumes_exactly(
    signum, starter, simulated_recording, simulated_models, uninterrupted, tmp_path
):
    """Ctrl-C or SIGTERM (what a container's stop sends) ends the run as at the end of its input: exit 0,
    the rows of what was read committed, and the same command resumes where it stopped."""
    expected, _ = uninterrupted
    url = f"sqlite:///{tmp_path / 'store.db'}"
    options = ("--recovery", tmp_path / "recovery", "--snapshot-interval", 0.5, "--models", simulated_models.folder)
    env = {"QF_ONLINE_STATE": str(tmp_path / "state")}
    process = in_background(starter.command(simulated_recording, url, *options, "--speed", 6), env)
    wait_for_rows(url, process, 4_000, "features")
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    assert f"stopped by {signal.Signals(signum).name}" in out.decode() and "Traceback" not in err.decode()
    assert 0 < len(store_contents(url)["features"]) < len(expected["features"])
    _finish(in_background(starter.command(simulated_recording, url, *options, "--json"), env))
    after = store_contents(url)
    for name in DATA_TABLES:
        assert after[name] == expected[name], name
