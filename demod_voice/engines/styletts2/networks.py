"""The StyleTTS2 inference networks, named so that the official checkpoint's state dicts load as they are.

Only what inference runs is here: the phoneme text encoder, the prosody predictor (durations, F0 and energy),
the two style encoders (acoustic and prosodic), the style-diffusion transformer and the HiFi-GAN decoder with its
harmonic-plus-noise source. The layer names and shapes follow the LibriTTS checkpoint; the structure is ours.

Weight-normalised and spectral-normalised layers are plain layers here: ``checkpoint.fold_norms`` turns the
stored ``weight_g``/``weight_v`` and ``weight_orig``/``weight_u``/``weight_v`` into one ``weight`` at load
time. ``normed(layer, kind)`` marks which layers carry such a norm in the checkpoint layout (used by tests that
write checkpoints in that layout).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


def normed(layer: nn.Module, kind: str = "weight") -> nn.Module:
    """Mark ``layer`` as stored with a weight norm (``"weight"``) or spectral norm (``"spectral"``)."""
    layer.stored_norm = kind
    return layer


def lrelu(x, slope: float = 0.2):
    return F.leaky_relu(x, slope)


def snake(x, alpha):
    """x + sin²(αx)/α: the periodic activation of the decoder."""
    return x + torch.sin(alpha * x) ** 2 / alpha


class ChannelNorm(nn.Module):
    """Layer norm over the channels of a (batch, channels, time) tensor, parameters ``gamma``/``beta``."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        y = F.layer_norm(x.transpose(1, 2), (x.shape[1],), self.gamma, self.beta, self.eps)
        return y.transpose(1, 2)


class LeakyStep(nn.Module):
    """LeakyReLU(0.2) as a module (it sits in numbered sequences whose indices the checkpoint keeps)."""

    def forward(self, x):
        return lrelu(x)


# --- text encoder ------------------------------------------------------------------------------------------------


class TextEncoder(nn.Module):
    """Phoneme ids -> (batch, channels, tokens): embedding, ``depth`` conv blocks, one bidirectional LSTM."""

    def __init__(self, channels: int, kernel_size: int, depth: int, n_symbols: int):
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, channels)
        self.cnn = nn.ModuleList(
            nn.Sequential(normed(nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2)),
                          ChannelNorm(channels), LeakyStep())
            for _ in range(depth))
        self.lstm = nn.LSTM(channels, channels // 2, 1, batch_first=True, bidirectional=True)

    def forward(self, ids):
        x = self.embedding(ids).transpose(1, 2)
        for block in self.cnn:
            x = block(x)
        x, _ = self.lstm(x.transpose(1, 2))
        return x.transpose(1, 2)


# --- style-conditioned blocks ------------------------------------------------------------------------------------


class AdaIN1d(nn.Module):
    """Instance norm whose scale and shift come from the style vector."""

    def __init__(self, style_dim: int, channels: int):
        super().__init__()
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x, s):
        gamma, beta = self.fc(s).unsqueeze(-1).chunk(2, dim=1)
        return (1 + gamma) * F.instance_norm(x, eps=1e-5) + beta


class AdaLayerNorm(nn.Module):
    """Layer norm over the last axis of (batch, time, channels), scaled and shifted by the style."""

    def __init__(self, style_dim: int, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x, s):
        gamma, beta = self.fc(s).unsqueeze(1).chunk(2, dim=-1)
        return (1 + gamma) * F.layer_norm(x, (x.shape[-1],), eps=self.eps) + beta


class AdainResBlk1d(nn.Module):
    """Residual block with AdaIN, optionally doubling the time axis (depthwise transposed conv)."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.conv1 = normed(nn.Conv1d(dim_in, dim_out, 3, 1, 1))
        self.conv2 = normed(nn.Conv1d(dim_out, dim_out, 3, 1, 1))
        self.norm1 = AdaIN1d(style_dim, dim_in)
        self.norm2 = AdaIN1d(style_dim, dim_out)
        if dim_in != dim_out:
            self.conv1x1 = normed(nn.Conv1d(dim_in, dim_out, 1, 1, 0, bias=False))
        if upsample:
            self.pool = normed(nn.ConvTranspose1d(dim_in, dim_in, 3, stride=2, groups=dim_in, padding=1,
                                                  output_padding=1))

    def forward(self, x, s):
        y = lrelu(self.norm1(x, s))
        if self.upsample:
            y = self.pool(y)
        y = self.conv2(lrelu(self.norm2(self.conv1(y), s)))
        short = F.interpolate(x, scale_factor=2.0, mode="nearest") if self.upsample else x
        if hasattr(self, "conv1x1"):
            short = self.conv1x1(short)
        return (y + short) / SQRT2


# --- prosody predictor -------------------------------------------------------------------------------------------


class DurationEncoder(nn.Module):
    """Alternating BiLSTMs and style layer norms; the style is appended to every step's features."""

    def __init__(self, style_dim: int, d_model: int, nlayers: int):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(nlayers):
            layers.append(nn.LSTM(d_model + style_dim, d_model // 2, 1, batch_first=True, bidirectional=True))
            layers.append(AdaLayerNorm(style_dim, d_model))
        self.lstms = nn.ModuleList(layers)

    def forward(self, x, s):
        """(batch, d_model, tokens), style -> (batch, tokens, d_model + style_dim)."""
        steps = x.shape[-1]
        style = s.unsqueeze(1).expand(-1, steps, -1)
        h = torch.cat([x.transpose(1, 2), style], dim=-1)
        for layer in self.lstms:
            if isinstance(layer, AdaLayerNorm):
                h = torch.cat([layer(h, s), style], dim=-1)
            else:
                h, _ = layer(h)
        return h


class ProsodyPredictor(nn.Module):
    def __init__(self, style_dim: int, d_hid: int, nlayers: int, max_dur: int):
        super().__init__()
        self.text_encoder = DurationEncoder(style_dim, d_hid, nlayers)
        self.lstm = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True, bidirectional=True)
        self.duration_proj = nn.Module()
        self.duration_proj.linear_layer = nn.Linear(d_hid, max_dur)
        self.shared = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True, bidirectional=True)
        half = d_hid // 2
        self.F0 = nn.ModuleList([AdainResBlk1d(d_hid, d_hid, style_dim), AdainResBlk1d(d_hid, half, style_dim, True),
                                 AdainResBlk1d(half, half, style_dim)])
        self.N = nn.ModuleList([AdainResBlk1d(d_hid, d_hid, style_dim), AdainResBlk1d(d_hid, half, style_dim, True),
                                AdainResBlk1d(half, half, style_dim)])
        self.F0_proj = nn.Conv1d(half, 1, 1)
        self.N_proj = nn.Conv1d(half, 1, 1)

    def durations(self, d):
        """Frames per token from the duration encoder's output (batch, tokens, features)."""
        x, _ = self.lstm(d)
        logits = self.duration_proj.linear_layer(x)
        return torch.round(torch.sigmoid(logits).sum(dim=-1)).clamp(min=1)

    def f0_energy(self, en, s):
        """Aligned features (batch, features, frames) -> F0 and energy curves at twice the frame rate."""
        x, _ = self.shared(en.transpose(1, 2))
        x = x.transpose(1, 2)
        f0, n = x, x
        for block in self.F0:
            f0 = block(f0, s)
        for block in self.N:
            n = block(n, s)
        return self.F0_proj(f0).squeeze(1), self.N_proj(n).squeeze(1)


# --- style encoders ----------------------------------------------------------------------------------------------


class HalvingResBlk(nn.Module):
    """2-D residual block that halves both axes (learned depthwise conv on the residual, average pool on the skip)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.conv1 = normed(nn.Conv2d(dim_in, dim_in, 3, 1, 1), "spectral")
        self.conv2 = normed(nn.Conv2d(dim_in, dim_out, 3, 1, 1), "spectral")
        self.downsample_res = nn.Module()
        self.downsample_res.conv = normed(nn.Conv2d(dim_in, dim_in, 3, stride=2, groups=dim_in, padding=1), "spectral")
        if dim_in != dim_out:
            self.conv1x1 = normed(nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False), "spectral")

    def forward(self, x):
        short = self.conv1x1(x) if hasattr(self, "conv1x1") else x
        if short.shape[-1] % 2:
            short = torch.cat([short, short[..., -1:]], dim=-1)
        short = F.avg_pool2d(short, 2)
        y = self.conv2(lrelu(self.downsample_res.conv(self.conv1(lrelu(x)))))
        return (short + y) / SQRT2


class StyleEncoder(nn.Module):
    """Mel (batch, 1, mels, frames) -> a style vector; the LibriTTS model has one acoustic, one prosodic."""

    def __init__(self, dim_in: int, style_dim: int, max_conv_dim: int):
        super().__init__()
        blocks: list[nn.Module] = [normed(nn.Conv2d(1, dim_in, 3, 1, 1), "spectral")]
        dim = dim_in
        for _ in range(4):
            out = min(dim * 2, max_conv_dim)
            blocks.append(HalvingResBlk(dim, out))
            dim = out
        blocks += [LeakyStep(), normed(nn.Conv2d(dim, dim, 5, 1, 0), "spectral"), nn.AdaptiveAvgPool2d(1), LeakyStep()]
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.Linear(dim, style_dim)

    def forward(self, mel):
        return self.unshared(self.shared(mel).flatten(1))


# --- style diffusion transformer ---------------------------------------------------------------------------------


class StyleAttention(nn.Module):
    """Self-attention whose input and context norms are style-conditioned."""

    def __init__(self, features: int, style_dim: int, heads: int, head_features: int):
        super().__init__()
        inner = heads * head_features
        self.heads = heads
        self.norm = AdaLayerNorm(style_dim, features)
        self.norm_context = AdaLayerNorm(style_dim, features)
        self.to_q = nn.Linear(features, inner, bias=False)
        self.to_kv = nn.Linear(features, inner * 2, bias=False)
        self.attention = nn.Module()
        self.attention.to_out = nn.Linear(inner, features)

    def forward(self, x, s):
        q = self.to_q(self.norm(x, s))
        k, v = self.to_kv(self.norm_context(x, s)).chunk(2, dim=-1)
        b, t, _ = q.shape
        q, k, v = (z.reshape(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        weights = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, t, -1)
        return self.attention.to_out(out)


class StyleTransformerBlock(nn.Module):
    def __init__(self, features: int, style_dim: int, heads: int, head_features: int, multiplier: int):
        super().__init__()
        self.attention = StyleAttention(features, style_dim, heads, head_features)
        self.feed_forward = nn.Sequential(nn.Linear(features, features * multiplier), nn.GELU(),
                                          nn.Linear(features * multiplier, features))

    def forward(self, x, s):
        x = x + self.attention(x, s)
        return x + self.feed_forward(x)


class FourierTime(nn.Module):
    """Noise level -> [t, sin(2πtw), cos(2πtw)] with learned frequencies ``weights``."""

    def __init__(self, dim: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(dim // 2))

    def forward(self, t):
        t = t.unsqueeze(-1)
        angles = t * self.weights.unsqueeze(0) * (2 * math.pi)
        return torch.cat([t, angles.sin(), angles.cos()], dim=-1)


class StyleTransformer(nn.Module):
    """The denoiser of style diffusion: a noisy style (batch, 1, 2·style_dim), the noise level, PL-BERT's
    embedding of the text and the reference style -> the network output (batch, 1, 2·style_dim)."""

    def __init__(self, channels: int, embedding_features: int, context_features: int, num_layers: int,
                 num_heads: int, head_features: int, multiplier: int, max_length: int):
        super().__init__()
        features = channels + embedding_features
        self.blocks = nn.ModuleList(StyleTransformerBlock(features, context_features, num_heads, head_features,
                                                          multiplier) for _ in range(num_layers))
        self.to_out = nn.Sequential(nn.Identity(), nn.Conv1d(features, channels, 1))
        self.to_mapping = nn.Sequential(nn.Linear(features, features), nn.GELU(), nn.Linear(features, features),
                                        nn.GELU())
        self.to_time = nn.Sequential(nn.Sequential(FourierTime(channels), nn.Linear(channels + 1, features)), nn.GELU())
        self.to_features = nn.Sequential(nn.Linear(context_features, features), nn.GELU())
        self.fixed_embedding = nn.Module()
        self.fixed_embedding.embedding = nn.Embedding(max_length, embedding_features)

    def _run(self, x, t, embedding, features):
        mapping = self.to_mapping(self.to_time(t) + self.to_features(features)).unsqueeze(1)
        h = torch.cat([x.expand(-1, embedding.shape[1], -1), embedding], dim=-1)
        for block in self.blocks:
            h = block(h + mapping, features)
        h = h.mean(dim=1, keepdim=True)
        return self.to_out[1](h.transpose(1, 2)).transpose(1, 2)

    def forward(self, x, t, embedding, features, embedding_scale: float = 1.0):
        out = self._run(x, t, embedding, features)
        if embedding_scale == 1.0:
            return out
        # classifier-free guidance: the unconditional run sees the learned positional table instead of the text
        steps = embedding.shape[1]
        fixed = self.fixed_embedding.embedding.weight[:steps].unsqueeze(0).expand(embedding.shape[0], -1, -1)
        plain = self._run(x, t, fixed, features)
        return plain + (out - plain) * embedding_scale


# --- decoder (HiFi-GAN with a harmonic-plus-noise source) ---------------------------------------------------------


class AdaINResBlock1(nn.Module):
    """HiFi-GAN resblock with AdaIN before each dilated conv and snake activations."""

    def __init__(self, channels: int, kernel_size: int, dilations, style_dim: int):
        super().__init__()
        self.convs1 = nn.ModuleList(normed(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                                     padding=d * (kernel_size - 1) // 2)) for d in dilations)
        self.convs2 = nn.ModuleList(normed(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1,
                                                     padding=(kernel_size - 1) // 2)) for _ in dilations)
        self.adain1 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilations)
        self.adain2 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilations)
        self.alpha1 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilations)
        self.alpha2 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilations)

    def forward(self, x, s):
        for c1, c2, n1, n2, a1, a2 in zip(self.convs1, self.convs2, self.adain1, self.adain2, self.alpha1,
                                          self.alpha2):
            y = c1(snake(n1(x, s), a1))
            x = x + c2(snake(n2(y, s), a2))
        return x


class HarmonicSource(nn.Module):
    """F0 (batch, samples) -> a mix of the fundamental and its harmonics (plus noise where unvoiced)."""

    def __init__(self, sample_rate: int, upsample: int, harmonics: int = 8, sine_amp: float = 0.1,
                 noise_std: float = 0.003, voiced_threshold: float = 10.0):
        super().__init__()
        self.sample_rate, self.upsample, self.harmonics = sample_rate, upsample, harmonics
        self.sine_amp, self.noise_std, self.voiced_threshold = sine_amp, noise_std, voiced_threshold
        self.l_linear = nn.Linear(harmonics + 1, 1)

    def _sines(self, f0, generator=None):
        """Phase is accumulated at frame rate and interpolated, as the model was trained."""
        freqs = f0.unsqueeze(-1) * torch.arange(1, self.harmonics + 2, device=f0.device, dtype=f0.dtype)
        step = (freqs / self.sample_rate) % 1
        start = torch.rand(f0.shape[0], self.harmonics + 1, device=f0.device, generator=generator)
        start[:, 0] = 0
        step[:, 0, :] = step[:, 0, :] + start
        coarse = F.interpolate(step.transpose(1, 2), scale_factor=1 / self.upsample, mode="linear")
        phase = torch.cumsum(coarse, dim=-1) * (2 * math.pi)
        phase = F.interpolate(phase * self.upsample, scale_factor=self.upsample, mode="linear")
        return torch.sin(phase).transpose(1, 2) * self.sine_amp

    def forward(self, f0, generator=None):
        with torch.no_grad():
            sines = self._sines(f0, generator)
            voiced = (f0 > self.voiced_threshold).to(sines.dtype).unsqueeze(-1)
            amp = voiced * self.noise_std + (1 - voiced) * self.sine_amp / 3
            # filled like the reference's randn_like: in the sines' own (harmonic-major) memory layout, so a
            # seed gives the reference's noise
            noise = torch.empty_like(sines).normal_(generator=generator)
            sines = sines * voiced + amp * noise
        return torch.tanh(self.l_linear(sines))  # (batch, samples, 1)


class Generator(nn.Module):
    def __init__(self, style_dim: int, resblock_kernel_sizes, upsample_rates, upsample_initial_channel: int,
                 resblock_dilation_sizes, upsample_kernel_sizes, sample_rate: int = 24000):
        super().__init__()
        total = int(math.prod(upsample_rates))
        self.total_upsample = total
        self.kernels = len(resblock_kernel_sizes)
        self.m_source = HarmonicSource(sample_rate, total)
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.noise_res = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        self.alphas = nn.ParameterList([nn.Parameter(torch.ones(1, upsample_initial_channel, 1))])
        ch = upsample_initial_channel
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            cin, ch = upsample_initial_channel // 2 ** i, upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(normed(nn.ConvTranspose1d(cin, ch, kernel, rate, padding=rate // 2 + rate % 2,
                                                      output_padding=rate % 2)))
            if i + 1 < len(upsample_rates):
                stride = int(math.prod(upsample_rates[i + 1:]))
                self.noise_convs.append(nn.Conv1d(1, ch, stride * 2, stride, padding=(stride + 1) // 2))
                self.noise_res.append(AdaINResBlock1(ch, 7, (1, 3, 5), style_dim))
            else:
                self.noise_convs.append(nn.Conv1d(1, ch, 1))
                self.noise_res.append(AdaINResBlock1(ch, 11, (1, 3, 5), style_dim))
            self.alphas.append(nn.Parameter(torch.ones(1, ch, 1)))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(AdaINResBlock1(ch, k, d, style_dim))
        self.conv_post = normed(nn.Conv1d(ch, 1, 7, 1, padding=3))

    def forward(self, x, s, f0, generator=None):
        f0 = f0.repeat_interleave(self.total_upsample, dim=-1)  # nearest upsampling to the sample rate
        source = self.m_source(f0, generator).transpose(1, 2)
        for i, up in enumerate(self.ups):
            x = snake(x, self.alphas[i])
            x = up(x) + self.noise_res[i](self.noise_convs[i](source), s)
            blocks = self.resblocks[i * self.kernels:(i + 1) * self.kernels]
            x = sum(block(x, s) for block in blocks) / self.kernels
        x = snake(x, self.alphas[len(self.ups)])
        return torch.tanh(self.conv_post(x))


class Decoder(nn.Module):
    """Aligned text features, F0, energy and the acoustic style -> waveform (batch, 1, samples).

    ``width`` (1024) and ``asr_width`` (64) are fixed in the official code; the loader reads them from the
    weights' shapes, so smaller test checkpoints keep the same layout.
    """

    def __init__(self, dim_in: int, style_dim: int, decoder: dict, width: int = 1024, asr_width: int = 64):
        super().__init__()
        extra = 2 + asr_width
        self.encode = AdainResBlk1d(dim_in + 2, width, style_dim)
        self.decode = nn.ModuleList([AdainResBlk1d(width + extra, width, style_dim) for _ in range(3)]
                                    + [AdainResBlk1d(width + extra, decoder["upsample_initial_channel"], style_dim,
                                                     upsample=True)])
        self.F0_conv = normed(nn.Conv1d(1, 1, 3, stride=2, padding=1))
        self.N_conv = normed(nn.Conv1d(1, 1, 3, stride=2, padding=1))
        self.asr_res = nn.Sequential(normed(nn.Conv1d(dim_in, asr_width, 1)))
        self.generator = Generator(style_dim, decoder["resblock_kernel_sizes"], decoder["upsample_rates"],
                                   decoder["upsample_initial_channel"], decoder["resblock_dilation_sizes"],
                                   decoder["upsample_kernel_sizes"])

    def forward(self, asr, f0, n, s, generator=None):
        f0_down = self.F0_conv(f0.unsqueeze(1))
        n_down = self.N_conv(n.unsqueeze(1))
        x = self.encode(torch.cat([asr, f0_down, n_down], dim=1), s)
        residual = self.asr_res(asr)
        for block in self.decode:  # the features are re-attached before each block (the last one upsamples)
            x = block(torch.cat([x, residual, f0_down, n_down], dim=1), s)
        return self.generator(x, s, f0, generator)
