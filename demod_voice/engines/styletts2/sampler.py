"""Style diffusion sampling: a Karras noise schedule walked by the ADPM2 sampler over a k-diffusion denoiser.

The constants are the ones StyleTTS2 samples with (sigma 1e-4 .. 3, rho 9; ADPM2's midpoint rule with rho 1).
Like the reference implementation, ``steps`` schedule levels are computed and ``steps - 1`` ADPM2 steps taken,
ending at the smallest level (not at zero); one step returns the scaled noise itself.
"""

from __future__ import annotations

import math

import torch

SIGMA_MIN = 1e-4
SIGMA_MAX = 3.0
RHO = 9.0


def karras_levels(steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, rho: float = RHO):
    """``steps`` noise levels from ``sigma_max`` down to ``sigma_min`` (Karras et al. 2022, eq. 5), then 0."""
    if steps == 1:
        return [sigma_max, 0.0]
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    levels = torch.arange(steps, dtype=torch.float32) / (steps - 1)
    sigmas = (hi + levels * (lo - hi)) ** rho
    return [float(v) for v in sigmas] + [0.0]


class Denoiser:
    """k-diffusion preconditioning around the style transformer: D(x, σ) = c_skip·x + c_out·net(c_in·x, ¼ log σ)."""

    def __init__(self, net, sigma_data: float, **conditioning):
        self.net = net
        self.sigma_data = sigma_data
        self.conditioning = conditioning

    def __call__(self, x, sigma: float):
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (sigma ** 2 + sd2)
        c_out = sigma * self.sigma_data / math.sqrt(sd2 + sigma ** 2)
        c_in = 1 / math.sqrt(sigma ** 2 + sd2)
        t = torch.full((x.shape[0],), math.log(sigma) * 0.25, device=x.device, dtype=x.dtype)
        return c_skip * x + c_out * self.net(c_in * x, t, **self.conditioning)


def adpm2(denoise, noise, steps: int, generator=None):
    """Sample from ``noise`` (already the shape of a style) with ``steps`` levels."""
    sigmas = karras_levels(steps)
    x = sigmas[0] * noise
    for sigma, sigma_next in zip(sigmas[:steps - 1], sigmas[1:steps]):
        sigma_up = math.sqrt(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2)
        sigma_down = math.sqrt(sigma_next ** 2 - sigma_up ** 2)
        sigma_mid = (sigma + sigma_down) / 2
        slope = (x - denoise(x, sigma)) / sigma
        x_mid = x + slope * (sigma_mid - sigma)
        slope_mid = (x_mid - denoise(x_mid, sigma_mid)) / sigma_mid
        x = x + slope_mid * (sigma_down - sigma) + torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * sigma_up
    return x
