"""The online state saved at the end of a run is restored only by a run that starts after the last
event it learned from: the same recording run twice predicts the same, a later one carries on warm."""

from __future__ import annotations

import pickle

import pytest
from pipeline_runs import replay

from dataflows import online_state
from dataflows.online_state import LastEvent
from models.bundle import Bundle
from models.online import InstrumentPredictor
from simulator import simulate
from store import open_store

NOT_RESTORED = "not restoring the online state"


def _predictions(url: str) -> list[dict]:
    with open_store(url).reader() as reader:
        return reader.rows("predictions")


def _vol_forecasts(url: str) -> list[dict]:
    with open_store(url).reader() as reader:
        return reader.rows("vol_forecasts")


def _state_warnings(summary) -> list[str]:
    return [warning for warning in summary.warnings if NOT_RESTORED in warning]


@pytest.fixture(scope="module")
def first_run(simulated_recording, simulated_models, tmp_path_factory):
    """The simulated minute predicted once, its online state saved at the end."""
    folder = tmp_path_factory.mktemp("first_run")
    url = f"sqlite:///{folder / 'first.db'}"
    summary = replay([simulated_recording], url, models=simulated_models.folder, online_state=folder / "state")
    return folder / "state", url, summary


def test_the_same_recording_twice_predicts_the_same(first_run, simulated_recording, simulated_models, tmp_path):
    state, first_url, first = first_run
    assert _state_warnings(first) == []  # nothing saved yet: nothing to say
    assert sorted(path.name for path in state.iterdir()) == [
        "binance_BTCUSDT.pkl",
        "binance_BTCUSDT.volatility.pkl",  # the volatility forecaster's, saved and restored by the same rule
        "coinbase_BTC-USD.pkl",
        "coinbase_BTC-USD.volatility.pkl",
    ]
    saved = state / "binance_BTCUSDT.pkl"
    learned = pickle.loads(saved.read_bytes())["learned_up_to"]
    assert learned["source"]["recordings"][0]["path"].endswith("binance_btcusdt.gz")
    assert learned["receive_ns"] > 0

    url = f"sqlite:///{tmp_path / 'again.db'}"
    again = replay([simulated_recording], url, models=simulated_models.folder, online_state=state)  # not fresh
    assert _predictions(url) == _predictions(first_url)
    assert len(_predictions(url)) > 1000
    warnings = _state_warnings(again)
    assert sorted(warning.split(":")[0] + ":" + warning.split(":")[1] for warning in warnings) == [
        "binance:BTCUSDT",
        "binance:BTCUSDT",
        "coinbase:BTC-USD",
        "coinbase:BTC-USD",
    ]  # once per instrument and learner
    assert all("learned from events up to" in warning for warning in warnings)
    assert sum("starting from the checkpoints" in warning for warning in warnings) == 2
    assert sum(".volatility.pkl" in warning and "starting afresh" in warning for warning in warnings) == 2
    assert _vol_forecasts(url) == _vol_forecasts(first_url)  # the volatility forecaster did not restore either
    # the state saved by the second run is again the one learned from this recording, not learned twice
    assert pickle.loads(saved.read_bytes())["learned_up_to"] == learned


def test_a_later_recording_carries_on_from_the_saved_state(first_run, simulated_models, tmp_path):
    state, _, _ = first_run
    later = tmp_path / "later"
    simulate(later, seed=8, minutes=1, start="2024-08-08T00:05:00Z")
    warm_url, cold_url = f"sqlite:///{tmp_path / 'warm.db'}", f"sqlite:///{tmp_path / 'cold.db'}"
    warm = replay([later], warm_url, models=simulated_models.folder, online_state=tmp_path / "copy")
    assert _state_warnings(warm) == []  # nothing there to restore
    (tmp_path / "copy").mkdir(exist_ok=True)
    for path in state.iterdir():
        (tmp_path / "copy" / path.name).write_bytes(path.read_bytes())
    warm = replay([later], warm_url, models=simulated_models.folder, online_state=tmp_path / "copy")
    replay([later], cold_url, models=simulated_models.folder, online_state=tmp_path / "unused", fresh=True)
    assert _state_warnings(warm) == []
    first_bayes = [row["model_probs"] for row in _predictions(warm_url)[:10]]
    assert first_bayes != [row["model_probs"] for row in _predictions(cold_url)[:10]]  # warm, not from the checkpoints


def test_a_state_that_does_not_say_what_it_learned_from_is_not_restored(simulated_models, tmp_path):
    bundle = Bundle.load(simulated_models.folder)
    learner = InstrumentPredictor(bundle)
    source = {"recordings": [{"path": "/data/binance_btcusdt.gz", "size": 1, "first_receive_ns": 1}]}
    online_state.save(tmp_path, online_state.online_state("binance:BTCUSDT", learner, LastEvent(source, 100, 7)))
    warnings: list[str] = []
    later, same = LastEvent({}, 101, None), LastEvent({}, 100, 7)
    assert online_state.restore(tmp_path, "binance:BTCUSDT", InstrumentPredictor(bundle), later, warnings.append)
    assert not online_state.restore(tmp_path, "binance:BTCUSDT", InstrumentPredictor(bundle), same, warnings.append)
    old = pickle.loads(online_state.state_path(tmp_path, "binance:BTCUSDT").read_bytes())
    del old["learned_up_to"]
    online_state.state_path(tmp_path, "binance:BTCUSDT").write_bytes(pickle.dumps(old))
    assert not online_state.restore(tmp_path, "binance:BTCUSDT", InstrumentPredictor(bundle), later, warnings.append)
    assert len(warnings) == 2 and all(warning.startswith("binance:BTCUSDT: not restoring") for warning in warnings)
    assert (
        "it learned from events up to 1970-01-01T00:00:00.000000Z (recordings binance_btcusdt.gz) and this run "
        "starts at 1970-01-01T00:00:00.000000Z: its predictions would use what it learned of their future"
        in warnings[0]
    )
    assert (
        "it does not say what it learned from (saved by an older version); starting from the checkpoints" in warnings[1]
    )
