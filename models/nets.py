"""The three Torch networks: each reads the last T standardized input vectors of an instrument
and gives, per horizon, logits of down / flat / up.

Each also has a linear path from the last input vector straight to the logits ("wide and deep",
Cheng et al. 2016): most of what is predictable at these horizons is in the current book, which a
linear model reads well, and the sequence part then only has to learn what the history adds.
Dropout on the inputs keeps the networks from leaning on a few inputs that drift between days."""

from __future__ import annotations

import torch
from torch import nn

DROPOUT = 0.2  # on the inputs
WIDTH = 32  # units of the sequence part: the LSTMs' state, the Transformer's width


class _WideAndDeep(nn.Module):
    def __init__(self, inputs: int, horizons: int, width: int, dropout: float) -> None:
        super().__init__()
        self.horizons = horizons
        self.dropout = nn.Dropout(dropout)
        self.wide = nn.Linear(inputs, horizons * 3)
        self.head = nn.Linear(width, horizons * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        return (self.wide(x[:, -1]) + self.head(self.deep(x))).view(-1, self.horizons, 3)

    def deep(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LSTMNet(_WideAndDeep):
    """An LSTM over the window (one layer unless ``depth`` says more); its last hidden state feeds the head."""

    def __init__(
        self,
        inputs: int,
        horizons: int,
        window: int,
        width: int = WIDTH,
        depth: int | None = None,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__(inputs, horizons, width, dropout)
        self.lstm = nn.LSTM(inputs, width, num_layers=depth or 1, batch_first=True)

    def deep(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(x)
        return states[:, -1]


class AttentionLSTM(_WideAndDeep):
    """An LSTM whose hidden states are pooled by additive attention (Bahdanau) and joined with
    the last state, so an event far back in the window can weigh in directly."""

    def __init__(
        self,
        inputs: int,
        horizons: int,
        window: int,
        width: int = WIDTH,
        depth: int | None = None,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__(inputs, horizons, 2 * width, dropout)
        self.lstm = nn.LSTM(inputs, width, num_layers=depth or 1, batch_first=True)
        self.score = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1, bias=False))

    def deep(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(x)
        attention = torch.softmax(self.score(states), dim=1)
        return torch.cat([(attention * states).sum(dim=1), states[:, -1]], dim=1)


class TransformerNet(_WideAndDeep):
    """A small Transformer encoder (two layers unless ``depth`` says otherwise) with learned positions
    over the window, read at its last step (the last layer is computed for that step only)."""

    def __init__(
        self,
        inputs: int,
        horizons: int,
        window: int,
        width: int = WIDTH,
        depth: int | None = None,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__(inputs, horizons, width, dropout)
        self.embed = nn.Linear(inputs, width)
        self.position = nn.Parameter(torch.zeros(1, window, width))
        layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=2 * width, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth or 2, enable_nested_tensor=False)

    def deep(self, x: torch.Tensor) -> torch.Tensor:
        states = self.embed(x) + self.position[:, -x.shape[1] :]
        *inner, last = self.encoder.layers
        for layer in inner:
            states = layer(states)
        return _last_step(last, states)


def _last_step(layer: nn.TransformerEncoderLayer, states: torch.Tensor) -> torch.Tensor:
    """The last position's output of a (post-norm) encoder layer: what ``layer(states)[:, -1]`` gives, with
    the query, the output projection and the feed-forward run for that position alone, not all T (only the
    last step feeds the head; its attention still reads every step's keys and values)."""
    query = states[:, -1:]
    attended = layer.self_attn(query, states, states, need_weights=False)[0]
    out = layer.norm1(query + layer.dropout1(attended))
    return layer.norm2(out + layer._ff_block(out))[:, 0]


NETS: dict[str, type[nn.Module]] = {"lstm": LSTMNet, "attention_lstm": AttentionLSTM, "transformer": TransformerNet}
