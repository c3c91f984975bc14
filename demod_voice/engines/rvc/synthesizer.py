"""The RVC synthesizer (VITS-style decoder path), written from the published design.

Module and parameter names follow the RVC WebUI checkpoints exactly
(``enc_p.*``, ``flow.flows.N.*``, ``dec.*``, ``emb_g.weight``) so a real voice
``.pth`` loads with strict key matching. Only the inference path exists: the
posterior encoder ``enc_q`` is not part of exported voices.

Weight-normalised layers are stored as ``weight_g``/``weight_v`` (or the newer
``parametrizations.weight.original0/1``); they are folded into plain weights at
load time, which is what inference wants anyway.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from demod_voice.errors import InputError

LRELU_SLOPE = 0.1


def _same_padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class LayerNorm(nn.Module):
    """Layer norm over the channel axis of ``[B, C, T]`` (parameters ``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        x = x.transpose(1, -1)
        x = F.layer_norm(x, (x.size(-1),), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention with windowed relative position embeddings (shared by heads)."""

    def __init__(self, channels: int, out_channels: int, n_heads: int, window_size: int = 10):
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        scale = self.k_channels ** -0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, window_size * 2 + 1, self.k_channels) * scale)
        self.emb_rel_v = nn.Parameter(torch.randn(1, window_size * 2 + 1, self.k_channels) * scale)

    def _relative(self, table, length: int):
        """The ``2*length-1`` relative embeddings centred on offset 0 (zero beyond the window)."""
        pad = max(length - (self.window_size + 1), 0)
        start = max((self.window_size + 1) - length, 0)
        if pad:
            table = F.pad(table, [0, 0, pad, pad, 0, 0])
        return table[:, start:start + 2 * length - 1]

    @staticmethod
    def _rel_to_abs(x):
        """[b, h, l, 2l-1] relative logits -> [b, h, l, l] absolute ones."""
        b, h, length, _ = x.shape
        x = F.pad(x, [0, 1]).reshape(b, h, length * 2 * length)
        x = F.pad(x, [0, length - 1])
        return x.reshape(b, h, length + 1, 2 * length - 1)[:, :, :length, length - 1:]

    @staticmethod
    def _abs_to_rel(x):
        """[b, h, l, l] absolute weights -> [b, h, l, 2l-1] relative ones."""
        b, h, length, _ = x.shape
        x = F.pad(x, [0, length - 1]).reshape(b, h, length * length + length * (length - 1))
        x = F.pad(x, [length, 0])
        return x.reshape(b, h, length, 2 * length)[:, :, :, 1:]

    def forward(self, x, mask):
        b, c, t = x.shape
        q = self.conv_q(x).view(b, self.n_heads, self.k_channels, t).transpose(2, 3)
        k = self.conv_k(x).view(b, self.n_heads, self.k_channels, t).transpose(2, 3)
        v = self.conv_v(x).view(b, self.n_heads, self.k_channels, t).transpose(2, 3)
        q = q / math.sqrt(self.k_channels)
        scores = torch.matmul(q, k.transpose(-2, -1))
        rel_k = self._relative(self.emb_rel_k, t)
        scores = scores + self._rel_to_abs(torch.matmul(q, rel_k.unsqueeze(0).transpose(-2, -1)))
        scores = scores.masked_fill(mask == 0, -1e4)
        weights = torch.softmax(scores, dim=-1)
        out = torch.matmul(weights, v)
        rel_v = self._relative(self.emb_rel_v, t)
        out = out + torch.matmul(self._abs_to_rel(weights), rel_v.unsqueeze(0))
        out = out.transpose(2, 3).contiguous().view(b, c, t)
        return self.conv_o(out)


class FFN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, filter_channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)

    def _pad(self, x):
        k = self.kernel_size
        return F.pad(x, [(k - 1) // 2, k // 2]) if k > 1 else x

    def forward(self, x, mask):
        x = torch.relu(self.conv_1(self._pad(x * mask)))
        return self.conv_2(self._pad(x * mask)) * mask


class Encoder(nn.Module):
    """Transformer encoder: attention + FFN blocks with post-norm residuals."""

    def __init__(self, hidden, filter_channels, n_heads, n_layers, kernel_size, window_size=10):
        super().__init__()
        self.attn_layers = nn.ModuleList(MultiHeadAttention(hidden, hidden, n_heads, window_size)
                                         for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(FFN(hidden, hidden, filter_channels, kernel_size) for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden) for _ in range(n_layers))

    def forward(self, x, mask):
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)
        x = x * mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True):
            x = norm1(x + attn(x, attn_mask))
            x = norm2(x + ffn(x, mask))
        return x * mask


class TextEncoder(nn.Module):
    """Content features (+ coarse pitch) -> prior mean and log-scale."""

    def __init__(self, feature_dim, out_channels, hidden, filter_channels, n_heads, n_layers, kernel_size, f0=True):
        super().__init__()
        self.out_channels = out_channels
        self.hidden = hidden
        self.emb_phone = nn.Linear(feature_dim, hidden)
        self.emb_pitch = nn.Embedding(256, hidden) if f0 else None
        self.encoder = Encoder(hidden, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def forward(self, phone, pitch, lengths):
        x = self.emb_phone(phone)
        if pitch is not None and self.emb_pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden), LRELU_SLOPE).transpose(1, -1)
        mask = (torch.arange(x.size(2), device=x.device)[None, :] < lengths[:, None]).unsqueeze(1).to(x.dtype)
        x = self.encoder(x * mask, mask)
        stats = self.proj(x) * mask
        mean, log_scale = torch.split(stats, self.out_channels, dim=1)
        return mean, log_scale, mask


class WN(nn.Module):
    """WaveNet-style gated dilated convolutions with speaker conditioning."""

    def __init__(self, hidden, kernel_size, dilation_rate, n_layers, gin_channels):
        super().__init__()
        self.hidden = hidden
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.cond_layer = nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1) if gin_channels else None
        for i in range(n_layers):
            dilation = dilation_rate ** i
            self.in_layers.append(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation,
                                            padding=_same_padding(kernel_size, dilation)))
            self.res_skip_layers.append(nn.Conv1d(hidden, 2 * hidden if i < n_layers - 1 else hidden, 1))

    def forward(self, x, mask, g=None):
        out = torch.zeros_like(x)
        g = self.cond_layer(g) if (g is not None and self.cond_layer is not None) else None
        h = self.hidden
        for i, (inner, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            a = inner(x)
            if g is not None:
                a = a + g[:, i * 2 * h:(i + 1) * 2 * h]
            acts = torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:])
            rs = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + rs[:, :h]) * mask
                out = out + rs[:, h:]
            else:
                out = out + rs
        return out * mask


class ResidualCouplingLayer(nn.Module):
    def __init__(self, channels, hidden, kernel_size, dilation_rate, n_layers, gin_channels):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WN(hidden, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = nn.Conv1d(hidden, self.half, 1)  # mean-only coupling

    def reverse(self, x, mask, g):
        x0, x1 = torch.split(x, [self.half, self.half], dim=1)
        h = self.enc(self.pre(x0) * mask, mask, g=g)
        x1 = (x1 - self.post(h) * mask) * mask
        return torch.cat([x0, x1], dim=1)


class ResidualCouplingBlock(nn.Module):
    """Four mean-only coupling layers; odd slots are parameter-free channel flips."""

    def __init__(self, channels, hidden, kernel_size, dilation_rate, n_layers, n_flows=4, gin_channels=0):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden, kernel_size, dilation_rate, n_layers,
                                                    gin_channels))
            self.flows.append(nn.Identity())  # Flip (no parameters)

    def reverse(self, x, mask, g):
        for flow in reversed(self.flows):
            x = torch.flip(x, [1]) if isinstance(flow, nn.Identity) else flow.reverse(x, mask, g)
        return x


class ResBlock1(nn.Module):
    def __init__(self, channels, kernel_size, dilation):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, dilation=d,
                                              padding=_same_padding(kernel_size, d)) for d in dilation)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding=_same_padding(kernel_size))
                                    for _ in dilation)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    def __init__(self, channels, kernel_size, dilation):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, dilation=d,
                                             padding=_same_padding(kernel_size, d)) for d in dilation[:2])

    def forward(self, x):
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class HarmonicSource(nn.Module):
    """Neural source filter: a sine at f0 where voiced, noise where not, mixed by ``l_linear``."""

    def __init__(self, sample_rate: int, upsample: int, sine_amp=0.1, noise_std=0.003):
        super().__init__()
        self.sample_rate = sample_rate
        self.upsample = upsample
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.l_linear = nn.Linear(1, 1)

    def forward(self, f0):  # f0: [B, T] in Hz at the frame rate
        # RVC draws a random initial phase per harmonic and zeroes the fundamental's, the only one it uses:
        # drawing it too keeps a seeded run's noise identical to RVC's.
        torch.rand(f0.shape[0], 1, device=f0.device)
        f0_up = f0.repeat_interleave(self.upsample, dim=1)  # [B, N]
        phase = torch.cumsum(f0_up.double() / self.sample_rate, dim=1) % 1.0
        sine = torch.sin(2 * math.pi * phase).to(f0.dtype) * self.sine_amp
        voiced = (f0_up > 0).to(f0.dtype)
        noise_amp = voiced * self.noise_std + (1 - voiced) * self.sine_amp / 3
        source = sine * voiced + noise_amp * torch.randn_like(sine)
        return torch.tanh(self.l_linear(source.unsqueeze(-1))).transpose(1, 2)  # [B, 1, N]


class Generator(nn.Module):
    """HiFi-GAN generator; with ``sample_rate`` set it is the NSF variant driven by f0."""

    def __init__(self, initial_channel, resblock, resblock_kernel_sizes, resblock_dilation_sizes, upsample_rates,
                 upsample_initial_channel, upsample_kernel_sizes, gin_channels, sample_rate=None):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        block = ResBlock1 if str(resblock) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        self.nsf = sample_rate is not None
        self.upp = int(np.prod(upsample_rates))
        if self.nsf:
            self.m_source = HarmonicSource(int(sample_rate), self.upp)
            self.noise_convs = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(nn.ConvTranspose1d(2 * ch, ch, k, u, padding=(k - u) // 2))
            if self.nsf:
                if i + 1 < len(upsample_rates):
                    stride = int(np.prod(upsample_rates[i + 1:]))
                    self.noise_convs.append(nn.Conv1d(1, ch, kernel_size=stride * 2, stride=stride,
                                                      padding=stride // 2))
                else:
                    self.noise_convs.append(nn.Conv1d(1, ch, kernel_size=1))
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(ch, rk, rd))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1) if gin_channels else None

    def forward(self, x, f0=None, g=None):
        source = self.m_source(f0) if self.nsf else None
        x = self.conv_pre(x)
        if g is not None and self.cond is not None:
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x = x + self.noise_convs[i](source)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(b(x) for b in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


class Synthesizer(nn.Module):
    """RVC's SynthesizerTrn{Ms256,Ms768}{NSFsid,NSFsid_nono}, inference path only."""

    def __init__(self, config: list, feature_dim: int, f0: bool):
        super().__init__()
        (spec_channels, _segment, inter, hidden, filter_channels, n_heads, n_layers, kernel_size, _dropout,
         resblock, rb_kernels, rb_dilations, up_rates, up_initial, up_kernels, spk_embed_dim, gin_channels,
         sample_rate) = config
        self.f0 = f0
        self.sample_rate = int(sample_rate) if not isinstance(sample_rate, str) else int(sample_rate.rstrip("k")) * 1000
        self.hop = int(np.prod(up_rates))
        self.enc_p = TextEncoder(feature_dim, inter, hidden, filter_channels, n_heads, n_layers, kernel_size, f0=f0)
        self.dec = Generator(inter, resblock, rb_kernels, rb_dilations, up_rates, up_initial, up_kernels,
                             gin_channels, sample_rate=self.sample_rate if f0 else None)
        self.flow = ResidualCouplingBlock(inter, hidden, 5, 1, 3, gin_channels=gin_channels)
        self.emb_g = nn.Embedding(int(spk_embed_dim), gin_channels)

    @torch.no_grad()
    def infer(self, phone, lengths, pitch=None, pitchf=None, sid=None, noise_scale: float = 0.66666):
        """Features ``[B, T, D]`` (+ coarse pitch ``[B, T]`` and f0 in Hz) -> audio ``[B, 1, T*hop]``."""
        if sid is None:
            sid = torch.zeros(phone.shape[0], dtype=torch.long, device=phone.device)
        g = self.emb_g(sid).unsqueeze(-1)
        mean, log_scale, mask = self.enc_p(phone, pitch if self.f0 else None, lengths)
        z_p = (mean + torch.exp(log_scale) * torch.randn_like(mean) * noise_scale) * mask
        z = self.flow.reverse(z_p, mask, g)
        return self.dec(z * mask, pitchf if self.f0 else None, g=g)


# --- loading real checkpoints --------------------------------------------------------

def _fold_weight_norm(weights: dict) -> dict:
    """``weight_g``/``weight_v`` (or parametrizations) -> ``weight``; everything else unchanged."""
    out: dict = {}
    pending: dict[str, dict] = {}
    for key, value in weights.items():
        for suffix, part in ((".weight_g", "g"), (".weight_v", "v"),
                             (".parametrizations.weight.original0", "g"),
                             (".parametrizations.weight.original1", "v")):
            if key.endswith(suffix):
                pending.setdefault(key[: -len(suffix)], {})[part] = value
                break
        else:
            out[key] = value
    for prefix, parts in pending.items():
        if set(parts) != {"g", "v"}:
            raise KeyError(f"{prefix}: weight norm needs both magnitude and direction, found only {sorted(parts)}")
        g, v = parts["g"].float(), parts["v"].float()
        dims = [d for d in range(v.dim()) if g.shape[d] == 1] if g.dim() == v.dim() else list(range(1, v.dim()))
        norm = torch.linalg.vector_norm(v, dim=dims, keepdim=True)
        out[prefix + ".weight"] = g * v / norm
    return out


def build(voice, device: str = "cpu", half: bool = False) -> Synthesizer:
    """A ``Synthesizer`` with a voice file's weights, strictly matched key by key."""
    model = Synthesizer(voice.config, voice.feature_dim, voice.f0)
    try:
        weights = _fold_weight_norm({k: v for k, v in voice.weights.items() if not k.startswith("enc_q.")})
    except KeyError as exc:
        raise InputError(f"{voice.path}: {exc.args[0]}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights) if tuple(expected[k].shape) != tuple(weights[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with other shapes (e.g. {k}: {tuple(weights[k].shape)} vs "
                         f"{tuple(expected[k].shape)})")
        raise InputError(f"{voice.path} does not match the RVC {voice.version} "
                         f"{'f0' if voice.f0 else 'no-f0'} synthesizer: " + "; ".join(parts),
                         hint="the file may come from another RVC fork or be damaged")
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    model.eval().to(device)
    if half:
        model.half()
    return model
