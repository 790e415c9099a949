"""The three Torch networks: each reads the last T standardized input vectors of an instrument
and gives, per horizon, logits of down / flat / up."""

from __future__ import annotations

import torch
from torch import nn


class LSTMNet(nn.Module):
    """An LSTM over the window; its last hidden state feeds one linear head per horizon."""

    def __init__(self, inputs: int, horizons: int, window: int, hidden: int = 32) -> None:
        super().__init__()
        self.horizons = horizons
        self.lstm = nn.LSTM(inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, horizons * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(x)
        return self.head(states[:, -1]).view(-1, self.horizons, 3)


class AttentionLSTM(nn.Module):
    """An LSTM whose hidden states are pooled by additive attention (Bahdanau) and joined with
    the last state, so an event far back in the window can weigh in directly."""

    def __init__(self, inputs: int, horizons: int, window: int, hidden: int = 32) -> None:
        super().__init__()
        self.horizons = horizons
        self.lstm = nn.LSTM(inputs, hidden, batch_first=True)
        self.score = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))
        self.head = nn.Linear(2 * hidden, horizons * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(x)
        attention = torch.softmax(self.score(states), dim=1)
        context = (attention * states).sum(dim=1)
        return self.head(torch.cat([context, states[:, -1]], dim=1)).view(-1, self.horizons, 3)


class TransformerNet(nn.Module):
    """A small Transformer encoder with learned positions over the window, read at its last step."""

    def __init__(self, inputs: int, horizons: int, window: int, width: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.horizons = horizons
        self.embed = nn.Linear(inputs, width)
        self.position = nn.Parameter(torch.zeros(1, window, width))
        layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=2 * width, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, horizons * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded = self.encoder(self.embed(x) + self.position[:, -x.shape[1] :])
        return self.head(encoded[:, -1]).view(-1, self.horizons, 3)


NETS: dict[str, type[nn.Module]] = {"lstm": LSTMNet, "attention_lstm": AttentionLSTM, "transformer": TransformerNet}
