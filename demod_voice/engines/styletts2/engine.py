"""One loaded StyleTTS2 model: reference audio -> style; text + style -> speech, sentence by sentence.

Inference as the paper describes it: PL-BERT embeds the phonemes; style diffusion samples a style vector
conditioned on that embedding and on the reference style; ``alpha`` (timbre) and ``beta`` (prosody) mix the
sampled style with the reference's; the prosody predictor gives durations, F0 and energy; the decoder speaks.
All randomness (diffusion noise, the harmonic source) comes from one ``torch.Generator`` seeded per request, so a
seed gives the same samples on every call and thread, and nothing touches torch's global generator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from demod_voice.audio import Audio
from demod_voice.engines.styletts2 import checkpoint, mel, text
from demod_voice.errors import InputError

SAMPLE_RATE = 24000
TAIL_TRIM = 50  # the decoder ends on a click; the reference implementation drops these samples too


class StyleTTS2Engine:
    def __init__(self, files: checkpoint.ModelFiles, device: str = "cpu"):
        import torch

        from demod_voice.engines.styletts2 import build

        self.files = files
        self.device = torch.device(device)
        self.params = checkpoint.model_params(files.config)
        self.style_dim = int(self.params["style_dim"])
        self.sigma_data = float(self.params["diffusion"]["dist"]["sigma_data"])
        self.nets = build.assemble(self.params, checkpoint.plbert_params(files.plbert_config),
                                   checkpoint.load_nets(files.weights), files.weights)
        for net in self.nets.values():
            net.to(self.device).eval()
        self.max_tokens = min(text.MAX_TOKENS, self.nets["bert"].config.max_position_embeddings - 2)
        self.model_id = f"{files.weights.stat().st_size}:{files.weights.stat().st_mtime_ns}:{files.weights}"
        self._lock = threading.Lock()

    # --- style of a reference --------------------------------------------------------------------------------

    def style(self, references: list) -> object:
        """The mean (acoustic | prosodic) style of the reference recordings, shape (1, 2·style_dim)."""
        import torch

        from demod_voice import audio as audio_mod

        styles = []
        for path in references:
            clip = audio_mod.read(path, sample_rate=SAMPLE_RATE, what="reference audio", max_seconds=60)
            samples = mel.trim_silence(clip.samples)
            if len(samples) < SAMPLE_RATE // 2:
                raise InputError(f"reference audio {path} has less than half a second of sound",
                                 hint="use a few seconds of clear speech")
            spec = mel.log_mel(samples, int(self.params["n_mels"])).to(self.device).unsqueeze(1)
            with torch.inference_mode():
                styles.append(torch.cat([self.nets["style_encoder"](spec), self.nets["predictor_encoder"](spec)], 1))
        return torch.stack(styles).mean(dim=0)

    # --- synthesis -----------------------------------------------------------------------------------------------

    def synthesize(self, words: str, style, *, alpha: float = 0.3, beta: float = 0.7, diffusion_steps: int = 5,
                   embedding_scale: float = 1.0, speed: float = 1.0, seed: int | None = None,
                   voice: str = "en-us") -> Iterator[Audio]:
        import torch

        sentences = [piece for line in text.phonemize(words, voice) for piece in text.pieces(line, self.max_tokens)]
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
        for phonemes in sentences:
            ids = text.to_ids(phonemes)
            if len(ids) < 2:
                continue
            with self._lock, torch.inference_mode():
                wave = self._sentence(ids, style.to(self.device), alpha, beta, diffusion_steps, embedding_scale,
                                      speed, generator)
            yield Audio(wave, SAMPLE_RATE)

    def _sentence(self, ids, ref, alpha, beta, steps, embedding_scale, speed, generator) -> np.ndarray:
        import torch

        from demod_voice.engines.styletts2 import sampler

        nets, dim = self.nets, self.style_dim
        tokens = torch.tensor([ids], dtype=torch.long, device=self.device)
        t_en = nets["text_encoder"](tokens)
        bert = nets["bert"](input_ids=tokens, attention_mask=torch.ones_like(tokens)).last_hidden_state
        d_en = nets["bert_encoder"](bert).transpose(1, 2)

        denoise = sampler.Denoiser(nets["diffusion"], self.sigma_data, embedding=bert, features=ref,
                                   embedding_scale=float(embedding_scale))
        noise = torch.randn((1, 1, 2 * dim), generator=generator, device=self.device)
        sampled = sampler.adpm2(denoise, noise, int(steps), generator).squeeze(1)
        timbre = alpha * sampled[:, :dim] + (1 - alpha) * ref[:, :dim]
        prosody = beta * sampled[:, dim:] + (1 - beta) * ref[:, dim:]

        predictor = nets["predictor"]
        d = predictor.text_encoder(d_en, prosody)
        frames = predictor.durations(d)[0]
        if speed != 1.0:
            frames = torch.round(frames / speed).clamp(min=1)
        counts = frames.long()
        alignment = torch.repeat_interleave(torch.eye(len(ids), device=self.device), counts, dim=1).unsqueeze(0)
        en = _shift(d.transpose(1, 2) @ alignment)  # the HiFi-GAN decoder was trained on one-frame-late features
        f0, energy = predictor.f0_energy(en, prosody)
        asr = _shift(t_en @ alignment)
        wave = nets["decoder"](asr, f0, energy, timbre, generator=generator)
        samples = wave.squeeze().float().cpu().numpy()
        return samples[:-TAIL_TRIM] if len(samples) > TAIL_TRIM else samples


def _shift(x):
    """Delay features by one frame along time (the first frame repeated)."""
    import torch

    return torch.cat([x[..., :1], x[..., :-1]], dim=-1)
