"""Streaming classification: push samples in chunks as a device does, get a decision at every hop.

Windows start at 0, hop, 2*hop, ... of the stream, exactly the windows a batch pass over the
whole signal takes, so the decisions equal the batch results (tested) whatever the chunk sizes.
Samples are at the model's rate (`lm.fs`); memory is one window plus one chunk.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import TinyRhythmError


class StreamingClassifier:
    """Push samples (at the model's rate) in any chunks, as a device delivers them; get
    (start, probabilities) for every window at 0, hop, 2*hop, ..., each classified alone."""

    def __init__(self, lm, hop: int | None = None):
        self.lm, self.length = lm, lm.input_length
        self.hop = hop or self.length // 2
        if not 0 < self.hop <= self.length:
            raise TinyRhythmError(f"hop must lie in 1..{self.length}, got {self.hop}")
        self.buf = np.zeros(0, np.float32)
        self.base = 0  # stream index of buf[0]
        self.next_start = 0

    def push(self, samples) -> list[tuple[int, np.ndarray]]:
        """Add samples; returns (start sample, class probabilities) for every window completed."""
        x = np.asarray(samples, np.float32).ravel()
        if not np.isfinite(x).all():
            raise TinyRhythmError("stream contains NaN or infinite samples")
        self.buf = np.concatenate([self.buf, x])
        starts = []
        while self.next_start + self.length <= self.base + len(self.buf):
            starts.append(self.next_start)
            self.next_start += self.hop
        out = []
        if starts:
            wins = np.stack([self.buf[s - self.base : s - self.base + self.length] for s in starts])
            out = list(zip(starts, self._probs(wins)))
        keep = self.next_start - self.base  # samples before the next window's start are no longer needed
        if keep > 0:
            self.buf, self.base = self.buf[keep:], self.base + keep
        return out

    def _probs(self, wins: np.ndarray) -> np.ndarray:
        return classify_windows(self.lm, wins)

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """End of stream: every window was already returned by `push` (one-pass has some left)."""
        return []

    def padded(self) -> list[tuple[int, np.ndarray]]:
        """At the end of a stream shorter than one window: that stream zero-padded to one window."""
        if self.next_start > 0 or not len(self.buf):
            return []
        return [(0, self._probs(np.pad(self.buf, (0, self.length - len(self.buf)))[None, :])[0])]


@torch.no_grad()
def classify_windows(lm, wins: np.ndarray) -> np.ndarray:
    """Class probabilities [n, classes] of windows [n, length] at the model's rate, each alone."""
    return torch.softmax(lm.model(torch.from_numpy(np.ascontiguousarray(wins, np.float32)).unsqueeze(1)), dim=1).numpy()


def batch_decisions(lm, signal: np.ndarray, hop: int | None = None) -> list[tuple[int, np.ndarray]]:
    """The same windows in one pass over a whole signal (at the model's rate)."""
    hop = hop or lm.input_length // 2
    starts = list(range(0, len(signal) - lm.input_length + 1, hop))
    if not starts:
        return []
    wins = np.stack([signal[s : s + lm.input_length] for s in starts]).astype(np.float32)
    return list(zip(starts, classify_windows(lm, wins)))
