"""The loaded XTTS-v2 model (torch from here on), cached per (folder, device, precision)."""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from demod_voice import audio as audio_mod
from demod_voice import text as text_mod
from demod_voice.audio import Audio
from demod_voice.config import XTTS_SAMPLING_KEYS as SAMPLING_KEYS
from demod_voice.engines.xtts.checkpoint import (
    check_language,
    conditioning_params,
    missing_files,
    model_identity,
    read_model_config,
)
from demod_voice.engines.xtts.latents import ConditioningPlan, XttsLatents, plan_conditioning
from demod_voice.engines.xtts.reference import REFERENCE_RATE
from demod_voice.errors import EngineError, InputError, ModelNotFoundError, UsageError, missing_extra

_LOGGER = logging.getLogger(__name__)

_CACHE_LOCK = threading.Lock()
#: One lock per device: GPU (or CPU) work of concurrent requests never interleaves.
_DEVICE_LOCKS: dict[str, threading.Lock] = {}
#: Default of ``xtts.prefix_cache_entries``: voices whose conditioning-prefix keys/values stay in memory
#: (about 8 MB each for the released model in fp32, 30 layers x 33 positions x 1024 x K and V).
DEFAULT_PREFIX_ENTRIES = 8



def load(model_dir: str | os.PathLike, device: str = "cpu", precision: str = "fp32", cfg=None) -> XttsEngine:
    """The process-wide engine for a checkpoint folder, loading it on first use.

    ``cfg`` (a Config) applies ``xtts.max_batch``, ``xtts.batch_window_ms`` and ``xtts.prefix_cache_entries``
    to the model's decoding batch.
    """
    from demod_voice.paths import file_identity
    from demod_voice.synthesis.manager import MODELS

    model_dir = Path(model_dir).resolve()
    files = tuple(file_identity(f) for f in sorted(model_dir.iterdir()) if f.is_file()) if model_dir.is_dir() else ()
    key = (str(model_dir), files, device, precision)
    engine = MODELS.get("xtts", key, lambda: XttsEngine(model_dir, device, precision), device=device,
                        label=model_dir.name, size=lambda e: e.nbytes)
    if cfg is not None:
        engine.configure_batching(cfg.get("xtts.max_batch"), cfg.get("xtts.batch_window_ms"),
                                  cfg.get("xtts.prefix_cache_entries"))
    return engine


class XttsEngine:
    """One loaded XTTS-v2 model. Keeps no per-request state; work is serialised per device."""

    name = "xtts"

    def __init__(self, model_dir: Path, device: str = "cpu", precision: str = "fp32"):
        try:
            import torch
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except ImportError as exc:
            raise missing_extra(exc.name or "coqui-tts", "xtts") from None
        missing = missing_files(model_dir)
        if missing:
            raise ModelNotFoundError(f"XTTS model folder {model_dir} is missing {', '.join(missing)}",
                                     hint="run 'demod-voice models pull xtts-v2 --accept-license'")
        self.model_dir = Path(model_dir)
        self.config_dict = read_model_config(model_dir)
        from demod_voice import devices

        self.device = devices.torch_device(device)
        if precision not in ("fp32", "fp16", "bf16"):
            raise UsageError(f"unknown precision '{precision}'", hint="use fp32, fp16 or bf16")
        if precision != "fp32" and not self.device.startswith("cuda"):
            _LOGGER.warning("%s needs a CUDA GPU; XTTS runs in fp32 on the CPU", precision)
            precision = "fp32"
        self.precision = precision
        self._autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        self.stats = {"latents_computed": 0, "latents_cached": 0}
        started = time.perf_counter()
        self._quiet_transformers()
        weights = self.model_dir / "model.pth"
        before = weights.stat()
        try:
            config = XttsConfig()
            config.load_json(str(self.model_dir / "config.json"))
            model = Xtts(config)
            model.load_checkpoint(config, checkpoint_dir=str(self.model_dir), eval=True)
        except PermissionError as exc:
            raise InputError(f"cannot load XTTS model from {self.model_dir}: {exc}",
                             hint="coqui-tts rewrites an original model.pth once on first load; make the folder "
                                  "writable (or load it once where it is)") from None
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError, pickle.UnpicklingError) as exc:
            if isinstance(exc, pickle.UnpicklingError):
                from demod_voice.engines.rvc.checkpoint import unsafe_message
                from demod_voice.errors import UnsafeCheckpointError

                # why it was refused, never torch's advice on switching the check off
                raise UnsafeCheckpointError(unsafe_message("XTTS checkpoint", weights, str(exc)),
                                            hint="the safe format is the official XTTS-v2 model.pth (weights only): "
                                                 "get it with 'demod-voice models pull xtts-v2'") from None
            raise InputError(f"cannot load XTTS model from {self.model_dir}: {type(exc).__name__}: {str(exc)[:300]}",
                             hint="the files may be truncated or not an XTTS-v2 checkpoint; "
                                  "check them with 'demod-voice models verify xtts-v2'") from None
        after = weights.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            _LOGGER.warning("coqui-tts rewrote %s once (it drops the pickled config from original checkpoints)", weights)
            from demod_voice import models

            models.record_rewrite(self.model_dir, "model.pth")
        if self.device.startswith("cuda"):
            model = model.cuda()
        self.model = model
        self.config = config
        self.model_id = model_identity(self.model_dir)
        self.sample_rate = int(config.model_args.output_sample_rate)
        self.languages = list(config.languages)
        self.gpt_width = int(config.model_args.gpt_n_model_channels)
        lock_key = self.device
        self._lock = _DEVICE_LOCKS.setdefault(lock_key, threading.Lock())
        self._scheduler = None
        self._batching: tuple[int, float] = (0, 0.0)
        self._prefix_entries = DEFAULT_PREFIX_ENTRIES
        self.configure_batching()
        _LOGGER.info("loaded XTTS model %s on %s (%s) in %.1f s", self.model_dir, self.device, self.precision,
                     time.perf_counter() - started)

    @staticmethod
    def _quiet_transformers() -> None:
        """transformers complains about GPT-2 token ids XTTS never uses; keep that off the user's screen."""
        if _LOGGER.isEnabledFor(logging.DEBUG):
            return
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
        except ImportError:
            pass

    # -- conditioning --------------------------------------------------------------------
    def plan(self, references: Iterable[str | os.PathLike], cache_dir: Path | None) -> ConditioningPlan:
        return plan_conditioning(references, self.model_dir, cache_dir, self.model_id)

    def conditioning(self, references: Iterable[str | os.PathLike] | ConditioningPlan,
                      cache_dir: Path | None = None) -> XttsLatents:
        """Latents for a reference set: from the on-disk cache when possible, else computed and stored."""
        plan = references if isinstance(references, ConditioningPlan) else self.plan(references, cache_dir)
        if plan.model_id != self.model_id:  # the checkpoint changed (e.g. rewritten on first load)
            plan.model_id = self.model_id
        cached = plan.cached()
        if cached is not None:
            self.stats["latents_cached"] += 1
            _LOGGER.info("conditioning latents: cache hit (%s)", plan.cache_path.name)
            return cached
        latents = self.compute_latents(plan.decode(), plan.params)
        latents.key = plan.key
        if plan.cache_path is not None:
            latents.save(plan.cache_path, {"references": ",".join(p.name for p in plan.files)})
        _LOGGER.info("conditioning latents: computed from %d reference(s)%s", len(plan.files),
                     f", cached as {plan.cache_path.name}" if plan.cache_path else "")
        return latents

    def compute_latents(self, references: list[Audio], params: dict | None = None) -> XttsLatents:
        """Run coqui's conditioning encoders on prepared reference audio (tensors, not paths)."""
        import torch

        params = params or conditioning_params(self.config_dict)
        sr = REFERENCE_RATE
        max_len = int(params["max_ref_len"]) * sr
        tensors, speaker = [], []
        with self._lock, self._autocast():
            for ref in references:
                clip = torch.from_numpy(audio_mod.resample(ref, sr).samples[:max_len].copy())[None]
                if params.get("sound_norm_refs"):
                    clip = clip / clip.abs().max() * 0.75
                speaker.append(self.model.get_speaker_embedding(clip, sr))
                tensors.append(clip)
            try:
                gpt = self.model.get_gpt_cond_latents(torch.cat(tensors, dim=-1), sr,
                                                      length=int(params["gpt_cond_len"]),
                                                      chunk_length=int(params["gpt_cond_chunk_len"]))
            except RuntimeError as exc:
                raise EngineError(f"XTTS conditioning failed: {exc}") from exc
        self.stats["latents_computed"] += 1
        return XttsLatents(gpt.float().cpu(), torch.stack(speaker).mean(dim=0).float().cpu(), self.model_id)

    # -- synthesis ------------------------------------------------------------------------
    def check_language(self, language: str | None) -> str:
        return check_language(language, self.languages)

    def _autocast(self):
        import contextlib

        import torch

        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self._autocast_dtype)

    def _check_latents(self, latents: XttsLatents) -> None:
        width = int(latents.gpt_cond_latent.shape[-1])
        if width != self.gpt_width:
            raise InputError(f"the voice latents ({latents.source}) were made by a different XTTS model "
                             f"(width {width}, this model has {self.gpt_width})",
                             hint="re-create the voice from its reference audio with this model")
        if latents.model_id and latents.model_id != self.model_id:
            _LOGGER.warning("the voice latents (%s) were made by another model (%s); results may differ",
                            latents.source, latents.model_id)

    def sentences(self, text: str, language: str, split_sentences: bool = True) -> list[str]:
        """Split (or not) and check each piece fits the GPT's text window."""
        limit = self.model.tokenizer.char_limits.get(language.split("-")[0], 250)
        pieces = text_mod.split_sentences(text, max_chars=limit) if split_sentences else [text_mod.normalize(text)]
        max_tokens = int(self.config.model_args.gpt_max_text_tokens)
        for piece in pieces:
            count = len(self.model.tokenizer.encode(piece.lower(), lang=language))
            if count >= max_tokens:
                raise InputError(f"a piece of text is too long for XTTS ({count} tokens, limit {max_tokens - 1}): "
                                 f"'{piece[:40]}...'",
                                 hint="use --split-sentences (the default) or shorter sentences")
        return [p for p in pieces if p.strip()]

    def synthesize(self, text: str, *, language: str, latents: XttsLatents, stream: bool = False,
                   split_sentences: bool = True, seed: int | None = None, stream_chunk_size: int = 20,
                   **sampling: Any) -> Iterator[Audio]:
        """Yield one chunk per sentence, or one per ``stream_chunk_size`` GPT tokens when ``stream``.

        The GPT decodes in the model's shared batch (``self.scheduler``), with
        this request's own generator: ``seed`` gives the same audio whatever
        else runs at the same time.
        """
        unknown = set(sampling) - set(SAMPLING_KEYS)
        if unknown:
            raise UsageError(f"unknown XTTS option(s): {', '.join(sorted(unknown))}",
                             hint="known: " + ", ".join(SAMPLING_KEYS))
        options = {k: v for k, v in sampling.items() if v is not None}
        language = self.check_language(language)
        text = text_mod.require_text(text)
        self._check_latents(latents)
        pieces = self.sentences(text, language, split_sentences)
        generator = self._generator(seed)
        sampling = self._sampling(options)
        speed = float(options.get("speed", 1.0))
        for piece in pieces:
            try:
                yield from self._speak(piece, language, latents, generator, sampling, speed,
                                       int(stream_chunk_size) if stream else 0)
            except (InputError, UsageError, EngineError):
                raise
            except (RuntimeError, AssertionError, ValueError, IndexError) as exc:
                raise EngineError(f"XTTS synthesis failed on '{piece[:40]}': {type(exc).__name__}: {exc}") from exc

    # -- batched decoding (demod_voice.engines.xtts.batching) -------------------------------
    def configure_batching(self, max_batch: int | None = None, window_ms: float | None = None,
                           prefix_entries: int | None = None) -> None:
        """Set ``xtts.max_batch`` (None: 8 on GPU, 4 on CPU), ``xtts.batch_window_ms`` and
        ``xtts.prefix_cache_entries`` (None: unchanged) for this model."""
        from demod_voice.engines.xtts import batching as xtts_batching

        self._batching = (max_batch or xtts_batching.default_max_batch(self.device),
                          xtts_batching.DEFAULT_WINDOW_MS if window_ms is None else float(window_ms))
        if prefix_entries is not None:
            self._prefix_entries = int(prefix_entries)
        if self._scheduler is not None:
            self._scheduler.configure(*self._batching)
            self._scheduler.decoder.prefixes.resize(self._prefix_entries)  # applied by the loop's next prefill

    @property
    def nbytes(self) -> int:
        """The model's parameters and buffers."""
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(x.numel() * x.element_size() for x in tensors)

    def unload(self) -> None:
        """Stop the decoding loop (its thread holds the model); a request still running restarts it."""
        with _CACHE_LOCK:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.close()

    @property
    def scheduler(self):
        """The model's one decoding loop, shared by every request in this process."""
        from demod_voice.engines.xtts import batching as xtts_batching

        with _CACHE_LOCK:
            if self._scheduler is None:
                max_batch, window_ms = self._batching
                quantum, fixed = xtts_batching.row_quantum(self.device, max_batch)
                decoder = xtts_batching.GptDecoder(self.model.gpt, quantum, self._prefix_entries)
                self._scheduler = xtts_batching.BatchScheduler(decoder, self._lock, self._autocast, max_batch,
                                                               window_ms, fixed_rows=fixed)
            return self._scheduler

    def _generator(self, seed: int | None):
        """A request's own random stream: seeded, or seeded from the global torch RNG (so torch.manual_seed holds)."""
        import torch

        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        generator = torch.Generator(device=self.model.device)
        generator.manual_seed(int(seed))
        return generator

    @staticmethod
    def _sampling(options: dict):
        from demod_voice.engines.xtts.batching import Sampling

        keys = ("temperature", "top_k", "top_p", "repetition_penalty")
        return Sampling(**{k: type(getattr(Sampling, k))(options[k]) for k in keys if k in options})

    def _speak(self, piece: str, language: str, latents: XttsLatents, generator, sampling, speed: float,
               chunk_tokens: int) -> Iterator[Audio]:
        """Decode one sentence in the shared batch; vocode here, every ``chunk_tokens`` tokens (0: once at the end).

        Chunking, cross-fading and speed follow coqui's ``inference_stream``.
        """
        import torch

        from demod_voice.engines.xtts.batching import DecodeJob, latents_digest

        model = self.model
        sent = piece.strip().lower()
        tokens = torch.IntTensor(model.tokenizer.encode(sent, lang=language.split("-")[0])).unsqueeze(0)
        scheduler = self.scheduler
        cond = latents.gpt_cond_latent
        with self._lock, self._autocast(), torch.inference_mode():
            prompt = scheduler.decoder.prompt(cond.to(model.device), tokens.to(model.device))
        # The voice's prefix is prefilled as its own stage and its keys/values cached per voice (batching.py).
        prefix_key = (self.model_id, latents_digest(cond), self.device, self.precision)
        job = scheduler.submit(DecodeJob(prompt, sampling, generator, scheduler.decoder.max_tokens,
                                         prefix_len=scheduler.decoder.prefix_len(cond), prefix_key=prefix_key))
        speaker = latents.speaker_embedding.to(model.device)
        length_scale = 1.0 / max(speed, 0.05)
        steps = iter(job)
        try:
            yield from self._vocode(steps, speaker, length_scale, chunk_tokens)
        finally:
            job.cancel()

    def _vocode(self, steps, speaker, length_scale: float, chunk_tokens: int) -> Iterator[Audio]:
        """Vocode every ``chunk_tokens`` latents (0: once at the end), re-running HiFi-GAN over all so far.

        Like coqui's ``inference_stream`` (same chunks, same cross-fade), except that the final call,
        which often brings no new latent, reuses the last waveform instead of vocoding it again
        (``handle_chunks`` then reads only its untouched last ``overlap`` samples: the same bits).
        """
        import torch

        model = self.model
        all_latents: list = []
        fresh = vocoded = 0
        wav = wav_prev = overlap = None
        done = False
        while not done:
            item = next(steps, None)
            if item is None:
                done = True
            else:
                all_latents.append(item[1])
                fresh += 1
            if not all_latents or not (done or (chunk_tokens > 0 and fresh >= chunk_tokens)):
                continue
            if not done and int(len(all_latents) * length_scale) < 1:
                continue  # sped up, too few latents for one frame yet: wait for more
            fresh = 0
            with self._lock, self._autocast(), torch.inference_mode():
                if len(all_latents) != vocoded:
                    wav = self._hifigan(torch.stack(all_latents)[None], speaker, length_scale)
                    vocoded = len(all_latents)
                chunk, wav_prev, overlap = model.handle_chunks(wav, wav_prev, overlap, 1024, is_final=done)
            samples = chunk.detach().float().cpu().numpy().reshape(-1)
            if len(samples):
                yield Audio(samples, self.sample_rate)

    def _hifigan(self, gpt_latents, speaker, length_scale: float):
        """The waveform [T] of latents [1, N, D]; ``length_scale`` != 1 stretches them first (coqui's speed)."""
        import torch.nn.functional as F

        if length_scale != 1.0:
            latents = gpt_latents.transpose(1, 2)
            if int(latents.shape[-1] * length_scale) >= 1:
                latents = F.interpolate(latents, scale_factor=length_scale, mode="linear")
            else:  # a one-latent utterance sped up: keep one frame rather than fail
                latents = F.interpolate(latents, size=1, mode="linear")
            gpt_latents = latents.transpose(1, 2)
        return self.model.hifigan_decoder(gpt_latents, g=speaker).squeeze()
