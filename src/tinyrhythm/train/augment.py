"""Training-time augmentation on batches: another lead, time stretch, NSTDB noise at random SNR, amplitude
scaling and polarity, baseline wander, a recorder's low-pass, DC offset. Everything draws from one torch Generator so
runs repeat exactly."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..datasets.nstdb import FS as NSTDB_FS
from ..windows.resample import resample
from .config import AugmentConfig


class Augmenter:
    def __init__(self, cfg: AugmentConfig, fs: float, noise: dict[str, np.ndarray] | None):
        self.cfg, self.fs = cfg, fs
        # Both leads of each noise recording, resampled once to the window rate.
        tracks = []
        for x in (noise or {}).values():
            for lead in range(x.shape[1]):
                y = resample(x[:, lead].astype(np.float32), NSTDB_FS, fs)
                tracks.append(y - y.mean())
        self.noise = torch.from_numpy(np.stack(tracks)) if tracks else None

    def __call__(self, x: torch.Tensor, gen: torch.Generator, partner: torch.Tensor | None = None) -> torch.Tensor:
        """x: [batch, 1, length] in mV, modified copy returned. `partner`: the same moment in
        each window's other lead, NaN where it has none (`WindowStore.lead_partners`)."""
        c, (b, _, n) = self.cfg, x.shape
        x = x.clone()
        u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
        if c.lead_mix_prob > 0 and partner is not None:
            x = lead_mix(x, partner, c.lead_mix_deg, c.lead_mix_prob, u)
        if c.stretch_prob > 0:
            x = stretch(x, c.stretch, c.stretch_prob, u)
        if self.noise is not None and c.noise_prob > 0:
            which = torch.randint(len(self.noise), (b,), generator=gen)
            start = (u(b) * (self.noise.shape[1] - n)).long()
            idx = start[:, None] + torch.arange(n)[None, :]
            noise = self.noise[which[:, None], idx]
            p_sig = x[:, 0].pow(2).mean(dim=1).clamp_min(1e-6)
            p_noise = noise.pow(2).mean(dim=1).clamp_min(1e-9)
            snr = c.snr_db[0] + u(b) * (c.snr_db[1] - c.snr_db[0])
            gain = torch.sqrt(p_sig / (p_noise * 10 ** (snr / 10)))
            gain = gain * (u(b) < c.noise_prob)
            x[:, 0] += gain[:, None] * noise
        if c.wander_prob > 0:
            t = torch.arange(n) / self.fs
            f = c.wander_hz[0] + u(b) * (c.wander_hz[1] - c.wander_hz[0])
            phase = u(b) * 2 * math.pi
            amp = c.wander_mv * u(b) * (u(b) < c.wander_prob)
            x[:, 0] += amp[:, None] * torch.sin(2 * math.pi * f[:, None] * t[None, :] + phase[:, None])
        if c.lowpass_prob > 0:
            x = lowpass(x, self.fs, c.lowpass_hz, c.lowpass_prob, u)
        if c.offset_mv > 0:
            x += (u(b) * 2 - 1)[:, None, None] * c.offset_mv
        lo, hi = math.log(c.scale[0]), math.log(c.scale[1])
        scale = torch.exp(lo + u(b) * (hi - lo))
        if c.invert_prob > 0:
            scale = scale * torch.where(u(b) < c.invert_prob, -1.0, 1.0)
        return x * scale[:, None, None]


def lead_mix(x: torch.Tensor, partner: torch.Tensor, max_deg: float, prob: float, u) -> torch.Tensor:
    """Each window that has a partner (not NaN), with probability `prob`, rotated towards it:
    cos(a) x + sin(a) partner, a uniform in +-max_deg. Any lead is close to a projection of one
    cardiac dipole, so a combination of two real leads is a real lead at another angle; the sum
    of squared weights is 1, and the model's conditioning removes the gain anyway."""
    b = x.shape[0]
    a = torch.deg2rad((u(b) * 2 - 1) * max_deg)
    drawn = (u(b) < prob) & ~torch.isnan(partner).flatten(1).any(1)
    a = torch.where(drawn, a, torch.zeros(b))
    y = torch.nan_to_num(partner)
    return torch.cos(a)[:, None, None] * x + torch.sin(a)[:, None, None] * y


def stretch(x: torch.Tensor, rate: tuple[float, float], prob: float, u) -> torch.Tensor:
    """Each window, with probability `prob`, read at `rate` (< 1) samples per output sample from
    a random start inside it, linearly interpolated: the same ECG slowed down. Before noise is
    added, so that the noise keeps its own spectrum."""
    b, _, n = x.shape
    r = rate[0] + u(b) * (rate[1] - rate[0])
    r = torch.where(u(b) < prob, r, torch.ones(b))
    start = u(b) * (n - 1) * (1 - r)
    pos = start[:, None] + torch.arange(n)[None, :] * r[:, None]
    lo = pos.floor().long().clamp(0, n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = (pos - lo).unsqueeze(1)
    return torch.gather(x, 2, lo.unsqueeze(1)) * (1 - frac) + torch.gather(x, 2, hi.unsqueeze(1)) * frac


def lowpass(x: torch.Tensor, fs: float, cutoff_hz: tuple[float, float], prob: float, u, order: int = 4) -> torch.Tensor:
    """Each window, with probability `prob`, through a zero-phase Butterworth low-pass of `order`
    (magnitude 1 / sqrt(1 + (f / fc)^(2 order))) at a cutoff uniform in `cutoff_hz`: a slower
    recorder's bandwidth. Applied in the frequency domain on the window reflected at both ends, so
    that its edges do not wrap into each other."""
    b, _, n = x.shape
    fc = cutoff_hz[0] + u(b) * (cutoff_hz[1] - cutoff_hz[0])
    drawn = u(b) < prob
    if not drawn.any():
        return x
    pad = min(n - 1, int(round(fs)))  # a second each side: the filter's ringing dies out well within it
    xp = torch.nn.functional.pad(x[drawn], (pad, pad), mode="reflect")
    f = torch.fft.rfftfreq(xp.shape[-1], 1 / fs)
    gain = 1 / torch.sqrt(1 + (f[None, :] / fc[drawn][:, None]) ** (2 * order))
    y = torch.fft.irfft(torch.fft.rfft(xp, dim=-1) * gain[:, None, :], n=xp.shape[-1], dim=-1)
    x = x.clone()
    x[drawn] = y[..., pad : pad + n].to(x.dtype)
    return x
