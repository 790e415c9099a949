"""Connections from a venue to the recorder: what was sent when, and when it was received."""

from __future__ import annotations

import math

from simulator.config import NetworkModel
from simulator.draws import Draws

READ_NS = 4_000  # the recorder reads one message after another off a socket


class Connection:
    """One TCP connection (a websocket, or the HTTP connection REST requests go over): messages
    arrive in the order they were sent, each after a lognormal one-way latency with rare spikes.

    ``lines`` holds ``(receive ns, payload)`` as a recorder writes them."""

    def __init__(self, model: NetworkModel, draws: Draws) -> None:
        self.model = model
        self.draws = draws
        self.lines: list[tuple[int, bytes]] = []
        self.last_receive = 0

    def latency_ns(self) -> int:
        model, draws = self.model, self.draws
        latency = model.median_ms * math.exp(model.sigma * draws.normal())
        if draws.uniform() < model.spike_share:
            latency += model.spike_ms * draws.exponential()
        return int(latency * 1e6)

    def send(self, send_ns: int, payload: bytes, delivered: bool = True) -> int:
        """Send ``payload``; returns its receive time. A message lost on the way (``delivered``
        False) still takes its place in time, so the rest of the stream is unchanged."""
        receive = max(send_ns + self.latency_ns(), self.last_receive + READ_NS)
        self.last_receive = receive
        if delivered:
            self.lines.append((receive, payload))
        return receive
