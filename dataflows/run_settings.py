"""What one run of the predict flow is given: the recordings and every choice about them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dataflows.recovery import SNAPSHOT_INTERVAL_S
from dataflows.sources import BATCH_MESSAGES, recording_identity


@dataclass(frozen=True)
class RunSettings:
    """A run's settings; None means the environment's default (``quantumflow.settings``).

    - ``recordings``: files or folders, replayed merged by receive time (one path may be given alone).
    - ``store``: a store URL (default ``QF_STORE``, else the SQLite file under data/).
    - ``feed``: the wire protocol, where a recording cannot be recognised.
    - ``speed``: replay at that many times real time (None: as fast as possible).
    - ``micro_price``: a table file from ``quantumflow micro-price`` (default ``QF_MICRO_PRICE``,
      else data/micro_price.json if present).
    - ``batch_messages``: the most messages a batch.
    - ``models``: checkpoints from ``quantumflow train`` (default ``QF_MODELS_DIR``, else
      data/models; with none there, no predictions).
    - ``online_state_dir``: where each instrument's online learner and ensemble are restored from
      and saved to at the end (default ``QF_ONLINE_STATE``); ``fresh`` restores nothing.
    - ``predictions``: False stops at the features.
    - ``workers``: Bytewax workers (``run_flow``'s; Bytewax's runner takes ``-w`` instead).
    - ``recovery``: a folder of Bytewax recovery snapshots (made on first use) that a killed run
      resumes from (``dataflows.recovery``); None: no recovery.
    - ``snapshot_interval_s``: with ``recovery``, how often the state is snapshotted (the epoch).
    - ``kafka``: a Kafka bootstrap address: the flow reads the raw topics there instead of recordings
      (``recordings`` empty); ``topics`` names them (default: every ``raw.<feed>`` topic there);
      ``stop_at_end`` stops at the end offsets they had when the run started (default: tail them).
    - ``predictions_topic``: also send each prediction row, as JSON, to this topic at ``kafka``.
    - ``live``: instrument keys (``binance:BTCUSDT``, ``coinbase:BTC-USD``) whose venues' live streams the
      flow reads instead of recordings (``dataflows.live_source``); ``record_to`` also writes what they
      send there as recordings; ``duration_s`` ends a live run after that many seconds.
    """

    recordings: tuple[Path, ...]
    store: str | None = None
    feed: str | None = None
    speed: float | None = None
    micro_price: str | Path | None = None
    batch_messages: int = BATCH_MESSAGES
    models: str | Path | None = None
    online_state_dir: str | Path | None = None
    fresh: bool = False
    predictions: bool = True
    workers: int = 1
    recovery: str | Path | None = None
    snapshot_interval_s: float = SNAPSHOT_INTERVAL_S
    kafka: str | None = None
    topics: tuple[str, ...] | None = None
    stop_at_end: bool = False
    predictions_topic: str | None = None
    live: tuple[str, ...] = ()
    record_to: Path | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        paths: Sequence[str | Path] = [self.recordings] if isinstance(self.recordings, str | Path) else self.recordings
        object.__setattr__(self, "recordings", tuple(Path(path) for path in paths))
        object.__setattr__(self, "live", tuple(self.live))
        if self.live and (self.kafka is not None or self.recordings):
            raise ValueError("a live run reads the venues: no recordings or Kafka broker with it")
        if self.predictions_topic is not None and self.kafka is None:
            raise ValueError("a predictions topic needs the Kafka broker to send to (--kafka)")

    @property
    def replays_files(self) -> bool:
        """True when the run reads recordings, which end, rather than a log or a stream that goes on."""
        return self.kafka is None and not self.live

    def source_identity(self) -> dict:
        """What the run reads, as recovery folders and saved online states record it: the recordings' files,
        or the Kafka topics and the broker they are on."""
        if self.live:
            return {"live": sorted(self.live)}
        if self.kafka is not None:
            return {"kafka": sorted(self.topics) if self.topics else "raw.*", "bootstrap": self.kafka}
        return {"recordings": recording_identity(self.recordings, self.feed)}
