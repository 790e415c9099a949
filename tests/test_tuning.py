"""quantumflow tune (never reads train's test part, resumes its study, its best settings reach train's
checkpoints) and walk-forward evaluation, on the simulated recording."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from dataflows.dataset import build_dataset
from dataflows.tuning import prepare
from models.bundle import Bundle
from models.nets import NETS
from models.online import InstrumentPredictor
from models.train import Events, Settings, split
from quantumflow.horizons import parse_horizons

BIN = Path(sys.executable).parent / "quantumflow"
QUICK_TRIALS = ("--horizons", "10", "--epochs", "1", "--max-windows", "300", "--minutes", "2")


def run(*args, env=None):
    return subprocess.run(
        [str(BIN), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "TQDM_DISABLE": "1", **(env or {})},
    )


def test_tuning_never_reads_the_part_train_tests_on(simulated_recording):
    recording = simulated_recording / "binance_btcusdt.gz"
    settings = Settings(parse_horizons("10,1s"))
    tuning = prepare([recording], settings, None, test_fraction=0.15)
    train_test_start = split(Events(build_dataset([recording], settings.horizons), settings.window), None).test_start
    assert tuning.held_out_start == train_test_start  # per instrument
    for derived in tuning.stream:
        assert derived.frame.ts.max() < train_test_start[derived.instrument]
    for data in tuning.data:
        assert data.events.ts.max() < train_test_start[data.instrument]
        assert data.matured_ts.max() < train_test_start[data.instrument]  # no label known only at or after it
        assert data.events.ts.min() < tuning.validation_start[data.instrument] < train_test_start[data.instrument]


def test_tune_resumes_its_study_and_train_uses_the_best_settings(simulated_recording, tmp_path):
    recording = simulated_recording / "binance_btcusdt.gz"
    env = {"QF_DATA_DIR": str(tmp_path / "data")}  # tune's default folder is data/tuning, where train looks
    first = run("tune", recording, *QUICK_TRIALS, "--trials", "2", "--json", env=env)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    tuning = tmp_path / "data" / "tuning"
    assert result["trials"] == result["new_trials"] == 2
    assert result["files"] == {"study": str(tuning / "study.db"), "best_settings": str(tuning / "best_settings.json")}
    second = run("tune", recording, *QUICK_TRIALS, "--trials", "1", "--json", env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["trials"] == 3
    study = optuna.load_study(study_name="quantumflow", storage=f"sqlite:///{tuning / 'study.db'}")
    assert study.trials[2].params != study.trials[1].params  # the resumed run drew new values
    best = json.loads((tuning / "best_settings.json").read_text())
    assert best["trials"] == 3 and best["tuned_on"]["recordings"] == ["binance_btcusdt.gz"]
    assert set(best["settings"]) == set(Settings([]).tunable())
    assert best["built_in"]["log_loss"] >= best["log_loss"]  # the first trial is the built-in settings

    other = run("tune", recording, *QUICK_TRIALS[2:], "--horizons", "1s", "--trials", "1", env=env)
    assert other.returncode == 2 and "made on binance_btcusdt.gz for horizons 10 " in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1

    trained = run("train", recording, "--out", tmp_path / "models", "--epochs", "1", "--horizons", "10", env=env)
    assert trained.returncode == 0, trained.stderr
    assert f"settings (tuned, from {tuning / 'best_settings.json'})" in trained.stdout
    manifest = json.loads((tmp_path / "models" / "manifest.json").read_text())
    assert manifest["settings"] == best["settings"] and manifest["window"] == best["settings"]["window"]
    assert manifest["ensemble"] == {
        "forgetting": best["settings"]["ensemble_forgetting"],
        "sharpness": best["settings"]["ensemble_sharpness"],
    }
    checkpoint = torch.load(tmp_path / "models" / "lstm.pt", weights_only=True)
    assert checkpoint["meta"]["architecture"]["width"] == best["settings"]["width"]
    bundle = Bundle.load(tmp_path / "models")  # the networks rebuilt in the tuned shape
    predictor = InstrumentPredictor(bundle)
    assert predictor.ensemble.sharpness == best["settings"]["ensemble_sharpness"]

    both = run("train", recording, "--settings", tuning / "best_settings.json", "--untuned", env=env)
    assert both.returncode == 2 and "contradict" in both.stderr


@pytest.mark.parametrize("kind", sorted(NETS))
def test_networks_take_the_tuned_architecture(kind):
    net = NETS[kind](5, 2, 16, width=16, depth=3, dropout=0.4)
    assert net(torch.zeros(4, 16, 5)).shape == (4, 2, 3)
    assert net.dropout.p == 0.4


def _periods(simulated_recording, folder) -> list[Path]:
    """The simulated Binance minute cut into three consecutive periods (the later continue the stream)."""
    with gzip.open(simulated_recording / "binance_btcusdt.gz", "rb") as source:
        lines = source.readlines()
    cuts = [0, len(lines) // 2, len(lines) * 3 // 4, len(lines)]
    paths = []
    for i, name in enumerate(("a.gz", "b.gz", "c.gz")):
        with gzip.open(folder / name, "wb") as out:
            out.writelines(lines[cuts[i] : cuts[i + 1]])
        paths.append(folder / name)
    return paths


def test_walk_forward_reports_every_fold_and_the_mean(simulated_recording, tmp_path):
    a, b, c = _periods(simulated_recording, tmp_path)
    options = ("--epochs", "1", "--window", "8", "--horizons", "10", "--untuned", "--out", tmp_path / "wf", "--json")
    result = run("evaluate", a, b, c, *options)
    assert result.returncode == 0, result.stderr
    assert "settings (built-in defaults, window from the command line): window 8," in result.stderr
    summary = json.loads(result.stdout)
    assert summary["mode"] == "expanding"
    assert [(fold["train"], fold["test"]) for fold in summary["folds"]] == [
        ([str(a)], [str(b)]),
        ([str(a), str(b)], [str(c)]),
    ]
    f1s = [fold["metrics"]["ensemble"]["10"]["macro_f1"] for fold in summary["folds"]]
    assert summary["mean"]["ensemble"]["10"]["macro_f1"] == pytest.approx(np.mean(f1s))
    assert summary["mean"]["logistic"]["10"]["n"] == sum(f["metrics"]["logistic"]["10"]["n"] for f in summary["folds"])
    assert json.loads((tmp_path / "wf" / "walk_forward.json").read_text()) == summary
    assert (tmp_path / "wf" / "fold_2" / "results.json").is_file()


def test_a_test_period_before_the_training_end_is_refused(simulated_recording, tmp_path):
    a, b, c = _periods(simulated_recording, tmp_path)
    for args in ((a, c, b), ("--train", b, "--test", a)):
        result = run("evaluate", *args, "--out", tmp_path / "never")
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "start at 2024-" in result.stderr and "before the training ones end at 2024-" in result.stderr
        assert not (tmp_path / "never").exists()
    result = run("evaluate", a, "--train", a, "--test", b)
    assert result.returncode == 2 and "not both" in result.stderr
