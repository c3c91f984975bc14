"""RMVPE pitch estimator (deep U-Net + BiGRU over a log-mel spectrogram).

Written from the published design so the public ``rmvpe.pt`` state dict loads
with strict key matching (``unet.encoder…``, ``cnn.*``, ``fc.0.gru.*``,
``fc.1.*``). Input is 16 kHz audio; output is f0 in Hz every 10 ms (0 = unvoiced).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from demod_voice.engines.rvc.checkpoint import safe_load
from demod_voice.errors import InputError

N_MELS = 128
N_CLASSES = 360
SAMPLE_RATE = 16000
HOP = 160


class ConvBlockRes(nn.Module):
    def __init__(self, cin: int, cout: int, momentum: float = 0.01):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout, momentum=momentum), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout, momentum=momentum), nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        return self.conv(x) + (self.shortcut(x) if self.shortcut is not None else x)


class ResEncoderBlock(nn.Module):
    def __init__(self, cin, cout, pool, n_blocks):
        super().__init__()
        self.conv = nn.ModuleList([ConvBlockRes(cin, cout)] + [ConvBlockRes(cout, cout) for _ in range(n_blocks - 1)])
        self.pool = nn.AvgPool2d(pool) if pool is not None else None

    def forward(self, x):
        for block in self.conv:
            x = block(x)
        return (x, self.pool(x)) if self.pool is not None else x


class UnetEncoder(nn.Module):
    def __init__(self, cin, n_layers, pool, n_blocks, cout=16):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin, momentum=0.01)
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(ResEncoderBlock(cin, cout, pool, n_blocks))
            cin, cout = cout, cout * 2
        self.out_channels = cout

    def forward(self, x):
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            skip, x = layer(x)
            skips.append(skip)
        return x, skips


class Intermediate(nn.Module):
    def __init__(self, cin, cout, n_layers, n_blocks):
        super().__init__()
        self.layers = nn.ModuleList([ResEncoderBlock(cin, cout, None, n_blocks)]
                                    + [ResEncoderBlock(cout, cout, None, n_blocks) for _ in range(n_layers - 1)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ResDecoderBlock(nn.Module):
    def __init__(self, cin, cout, stride, n_blocks):
        super().__init__()
        out_pad = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, 3, stride, 1, out_pad, bias=False),
            nn.BatchNorm2d(cout, momentum=0.01), nn.ReLU(),
        )
        self.conv2 = nn.ModuleList([ConvBlockRes(cout * 2, cout)] + [ConvBlockRes(cout, cout) for _ in range(n_blocks - 1)])

    def forward(self, x, skip):
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class UnetDecoder(nn.Module):
    def __init__(self, cin, n_layers, stride, n_blocks):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            self.layers.append(ResDecoderBlock(cin, cin // 2, stride, n_blocks))
            cin //= 2

    def forward(self, x, skips):
        for i, layer in enumerate(self.layers):
            x = layer(x, skips[-1 - i])
        return x


class DeepUnet(nn.Module):
    def __init__(self, pool, n_blocks, depth=5, inter_layers=4, cin=1, base=16):
        super().__init__()
        self.encoder = UnetEncoder(cin, depth, pool, n_blocks, base)
        self.intermediate = Intermediate(self.encoder.out_channels // 2, self.encoder.out_channels, inter_layers,
                                         n_blocks)
        self.decoder = UnetDecoder(self.encoder.out_channels, depth, pool, n_blocks)

    def forward(self, x):
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    def __init__(self, n_in, n_hidden, n_layers):
        super().__init__()
        self.gru = nn.GRU(n_in, n_hidden, num_layers=n_layers, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.gru(x)[0]


class E2E(nn.Module):
    """The full RMVPE network: mel ``[B, 128, T]`` -> pitch-class salience ``[B, T, 360]``."""

    def __init__(self, n_blocks=4, n_gru=1, pool=(2, 2), depth=5, inter_layers=4, base=16):
        super().__init__()
        self.unet = DeepUnet(pool, n_blocks, depth, inter_layers, 1, base)
        self.cnn = nn.Conv2d(base, 3, 3, padding=1)
        self.fc = nn.Sequential(BiGRU(3 * N_MELS, 256, n_gru), nn.Linear(512, N_CLASSES), nn.Dropout(0.25),
                                nn.Sigmoid())

    def forward(self, mel):
        x = mel.transpose(-1, -2).unsqueeze(1)
        x = self.cnn(self.unet(x)).transpose(1, 2).flatten(-2)
        return self.fc(x)


def _mel_filterbank(n_fft=1024, n_mels=N_MELS, sr=SAMPLE_RATE, fmin=30.0, fmax=8000.0) -> np.ndarray:
    """Slaney-normalised triangular filters on the HTK mel scale (what RMVPE was trained with)."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


class RMVPE:
    """A loaded RMVPE model with its mel front end and salience decoding."""

    def __init__(self, model: E2E, device: str = "cpu"):
        self.model = model.eval().to(device)
        self.device = device
        self.mel_basis = torch.from_numpy(_mel_filterbank()).to(device)
        self.window = torch.hann_window(1024, device=device)
        self.cents = 20.0 * np.arange(N_CLASSES) + 1997.3794084376191

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio, n_fft=1024, hop_length=HOP, win_length=1024, window=self.window, center=True,
                          return_complex=True).abs()
        return torch.log(torch.clamp(self.mel_basis @ spec, min=1e-5))

    @torch.no_grad()
    def f0(self, audio16k: np.ndarray, threshold: float = 0.03) -> np.ndarray:
        audio = torch.from_numpy(np.ascontiguousarray(audio16k, dtype=np.float32)).to(self.device)
        mel = self.mel(audio.unsqueeze(0))
        frames = mel.shape[-1]
        pad = 32 * ((frames - 1) // 32 + 1) - frames
        mel = torch.nn.functional.pad(mel, (0, pad), mode="constant")
        salience = self.model(mel)[0, :frames].float().cpu().numpy()
        return self.decode(salience, threshold)

    def decode(self, salience: np.ndarray, threshold: float) -> np.ndarray:
        """Local weighted average of cents around each frame's peak -> Hz (0 where unsure)."""
        centre = np.argmax(salience, axis=1)
        padded = np.pad(salience, ((0, 0), (4, 4)))
        idx = centre[:, None] + np.arange(9)[None, :]
        weights = np.take_along_axis(padded, idx, axis=1)
        cents = np.take_along_axis(np.pad(self.cents, 4)[None, :].repeat(len(centre), 0), idx, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = np.sum(weights * cents, axis=1) / np.sum(weights, axis=1)
        avg[np.max(salience, axis=1) <= threshold] = 0
        avg = np.nan_to_num(avg)
        f0 = 10.0 * 2.0 ** (avg / 1200.0)
        f0[f0 == 10.0] = 0.0
        return f0.astype(np.float32)


def _shape_of(state: dict) -> dict:
    """Network sizes read from the weights (the public rmvpe.pt: 4 blocks, 1 GRU layer, 16 base channels)."""
    import re

    def count(pattern: str) -> int:
        return len({m.group(1) for k in state if (m := re.match(pattern, k))})

    base = state.get("unet.encoder.layers.0.conv.0.conv.0.weight")
    return {
        "n_blocks": count(r"unet\.encoder\.layers\.0\.conv\.(\d+)\.") or 4,
        "n_gru": count(r"fc\.0\.gru\.weight_ih_l(\d+)$") or 1,
        "depth": count(r"unet\.encoder\.layers\.(\d+)\.") or 5,
        "inter_layers": count(r"unet\.intermediate\.layers\.(\d+)\.") or 4,
        "base": int(base.shape[0]) if base is not None else 16,
    }


def load(path, device: str = "cpu") -> RMVPE:
    """``rmvpe.pt`` (a plain state dict) -> ``RMVPE``, keys matched strictly."""
    state = safe_load(path, "RMVPE weights")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or "cnn.weight" not in state:
        raise InputError(f"{path} is not an RMVPE state dict (no cnn.weight)", hint="pass rmvpe.pt")
    model = E2E(**_shape_of(state))
    expected = model.state_dict()
    state = dict(state)
    for key in expected:  # older saves leave BatchNorm's counters out; they do not affect inference
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, expected[key])
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise InputError(f"{path} does not match the RMVPE network ({len(missing)} missing e.g. {missing[:2]}, "
                         f"{len(extra)} unexpected e.g. {extra[:2]})", hint="pass the rmvpe.pt RVC uses")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return RMVPE(model, device)
