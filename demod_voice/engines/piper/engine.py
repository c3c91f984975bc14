"""Piper neural TTS, in process, on piper-tts (ONNX Runtime).

A voice is loaded once per process and cached by (path, device); synthesis
yields one ``Audio`` chunk per sentence, so callers can stream.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from demod_voice.audio import Audio
from demod_voice.errors import EngineError, InputError, NotAvailableError, missing_extra
from demod_voice.tempo import stretch

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class PiperOptions:
    """Per-request synthesis settings; ``None`` means the voice's own default."""

    speaker_id: int | None = None
    """Speaker index for multi-speaker voices."""
    length_scale: float | None = None
    """Phoneme duration multiplier (>1 slower)."""
    noise_scale: float | None = None
    """Generator noise (0 makes output deterministic)."""
    noise_w: float | None = None
    """Phoneme width noise (0 makes durations deterministic)."""
    volume: float = 1.0
    """Output volume multiplier."""
    sentence_silence: float = 0.0
    """Seconds of silence between sentences (none after the last)."""
    normalize_audio: bool = True
    """Scale each sentence to full loudness, as piper does unless ``--no-normalize``."""
    tempo: float = 1.0
    """Playback rate (the request's ``speed``): each sentence is time-stretched to ``1 / tempo`` of its
    length, pitch kept (``demod_voice.tempo``), because the model does not follow ``length_scale`` linearly."""


@dataclass(frozen=True)
class PiperVoiceConfig:
    """What the ``.onnx.json`` beside a voice says about it."""

    sample_rate: int
    language: str
    quality: str
    num_speakers: int
    speaker_id_map: dict = field(default_factory=dict)
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    """The whole file, for piper-tts's own ``PiperConfig.from_dict``."""

    def speaker_id(self, speaker: str | int | None, voice: str) -> int | None:
        """Resolve a speaker name or index for voice ``voice``, with a clear error for bad ones."""
        if speaker is None or speaker == "":
            return None
        if self.num_speakers <= 1 and str(speaker).strip() == "0":
            return None  # as piper does: the only speaker of a one-speaker voice is speaker 0
        if self.num_speakers <= 1:
            raise InputError(f"voice {voice} has a single speaker; speaker '{speaker}' cannot be used",
                             hint="leave the speaker out")
        if isinstance(speaker, str) and speaker in self.speaker_id_map:
            return int(self.speaker_id_map[speaker])
        try:
            index = int(speaker)
        except (TypeError, ValueError):
            names = ", ".join(list(self.speaker_id_map)[:10])
            raise InputError(f"unknown speaker '{speaker}' for voice {voice}",
                             hint=f"use an index 0-{self.num_speakers - 1} or a name such as {names}") from None
        if not 0 <= index < self.num_speakers:
            raise InputError(f"speaker {index} is out of range for voice {voice}",
                             hint=f"use 0-{self.num_speakers - 1}")
        return index

    @staticmethod
    def read(config_path: Path) -> PiperVoiceConfig:
        try:
            data = json.loads(Path(config_path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"voice config not found: {config_path}",
                             hint="a Piper voice needs its .onnx.json beside the .onnx") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"voice config {config_path} is not valid JSON: {exc}") from None
        try:
            inference = data.get("inference", {})
            language = data.get("language", {})
            sample_rate = int(data["audio"]["sample_rate"])
            if not 1000 <= sample_rate <= 384_000:
                raise ValueError(f"audio.sample_rate {sample_rate} is not a usable rate (1000-384000 Hz)")
            return PiperVoiceConfig(
                sample_rate=sample_rate,
                language=str(language.get("code") or data.get("espeak", {}).get("voice", "")),
                quality=str(data.get("audio", {}).get("quality", "")),
                num_speakers=int(data.get("num_speakers", 1)),
                speaker_id_map=dict(data.get("speaker_id_map") or {}),
                length_scale=float(inference.get("length_scale", 1.0)),
                noise_scale=float(inference.get("noise_scale", 0.667)),
                noise_w=float(inference.get("noise_w", 0.8)),
                raw=data,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"voice config {config_path} is missing or has a bad field: {exc}",
                             hint="it should be the .onnx.json that came with the voice") from None


def check_voice_files(model_path: Path) -> Path:
    """The voice's config path, after checking both files exist (clear errors otherwise)."""
    if not model_path.is_file():
        raise InputError(f"Piper voice not found: {model_path}", hint="check the path or run 'demod-voice voices list'")
    config_path = config_path_for(model_path)
    if config_path is None:
        raise InputError(f"voice config missing for {model_path.name}: expected {model_path}.json",
                         hint="download the .onnx.json that belongs to this voice and put it beside the .onnx")
    return config_path


def config_path_for(model_path: Path) -> Path | None:
    """``voice.onnx.json`` (piper's convention) or ``voice.json`` beside the model."""
    for candidate in (Path(f"{model_path}.json"), model_path.with_suffix(".json")):
        if candidate.is_file():
            return candidate
    return None


#: Backend name -> ``module:class`` that runs a Piper voice. Backends are imported by name on first
#: use, so they depend on this module and never the other way round (no import circle).
BACKENDS = {
    "onnxruntime": "demod_voice.engines.piper.engine:PiperEngine",
    "tinygrad": "demod_voice.engines.piper.tinygrad_backend:TinygradPiperEngine",
}


def load(model_path: str | Path, device: str = "cpu", backend: str = "onnxruntime",
         threads: int | None = None, spinning: str = "auto", release_ids: int | None = None) -> PiperEngine:
    """The process-wide engine for a voice file, loading it on first use.

    ``backend`` picks what runs the network: ONNX Runtime (default) or the
    experimental tinygrad backend (engines/piper/tinygrad_backend.py). ``threads``
    (config ``piper.onnx_threads``) caps ONNX Runtime's intra-op threads;
    ``spinning`` (``piper.onnx_spinning``) says when its threads may spin;
    ``release_ids`` (``piper.arena_release_ids``, None: keep the engine's) says
    which runs hand the CPU arena's free memory back (``_CpuSession``).
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown Piper backend '{backend}'", hint=f"use one of: {', '.join(BACKENDS)}")
    if spinning not in SPINNING:
        raise InputError(f"unknown Piper spinning policy '{spinning}'", hint=f"use one of: {', '.join(SPINNING)}")
    from demod_voice.paths import file_identity
    from demod_voice.synthesis.manager import MODELS

    model_path = Path(model_path).resolve()
    identity = (file_identity(model_path), file_identity(config_path_for(model_path) or model_path))
    key = ((*identity, device, threads, spinning) if backend == "onnxruntime" else (*identity, device, backend))
    module, _, cls = BACKENDS[backend].partition(":")
    extra = {"threads": threads, "spinning": spinning} if backend == "onnxruntime" else {}
    engine = MODELS.get("piper", key, lambda: getattr(importlib.import_module(module), cls)(model_path, device, **extra),
                        device=device, label=model_path.name, size=lambda e: e.nbytes)
    session = getattr(getattr(engine, "_voice", None), "session", None)
    if release_ids is not None and isinstance(session, _CpuSession):
        session.release_ids = int(release_ids)
    return engine


_ARENA_LOCK = threading.Lock()
_ARENA_REGISTERED = False


def _register_shared_cpu_arena() -> None:
    """Register one CPU arena for every Piper session of the process (once).

    Measured on the Joe voice (docs/benchmarks.md): ONNX Runtime's default per-session arena grows in
    powers of two and keeps the largest buffers any sentence length ever needed (RSS stays at its ~1 GB
    peak); no arena at all returns memory but allocates every tensor anew, 3-7 % slower per sentence. This
    arena allocates exactly what is asked (``kSameAsRequested``), so what it keeps between runs is at most
    what the largest run needed; runs bigger than ``_CpuSession.release_ids`` give it back at their end.
    """
    global _ARENA_REGISTERED
    import onnxruntime

    with _ARENA_LOCK:
        if _ARENA_REGISTERED:
            return
        memory = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                           onnxruntime.OrtMemType.DEFAULT)
        try:
            onnxruntime.create_and_register_allocator(memory, onnxruntime.OrtArenaCfg({"arena_extend_strategy": 1}))
        except Exception as exc:  # registered already (another library in this process): use it as it is
            _LOGGER.debug("shared CPU arena not registered: %s", exc)
        _ARENA_REGISTERED = True


def _new_session(model_path: Path, use_cuda: bool, threads: int | None, alignments: bool, spin: bool = False):
    """One ONNX Runtime session for a Piper voice.

    Measured (docs/benchmarks.md): ONNX Runtime's intra-op threads spin while they wait for work, which
    makes a lone run 5-8 % faster on an idle machine but steals the cores that concurrent runs need. So a
    ``spin`` session spins only during its runs (``session.force_spinning_stop``: the threads stop as soon
    as the last run returns), and the other session never spins; ``_CpuSession`` picks one per run.
    Spinning changes how threads wait, not how work is split, so both give the same bits (tested).
    ``threads`` caps the intra-op threads (None: one per core).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if spin:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if not use_cuda:
        _register_shared_cpu_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
    if threads:
        options.intra_op_num_threads = int(threads)
    providers = ([("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})] if use_cuda
                 else ["CPUExecutionProvider"])
    model: str | bytes = str(model_path)
    if alignments:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output

        graph = onnx.load(str(model_path))
        try:
            add_alignment_output(graph)
            model = graph.SerializeToString()
        except ValueError:  # already patched on disk, or no alignment tensor: use the file as it is
            pass
    return onnxruntime.InferenceSession(model, sess_options=options, providers=providers)


#: ``piper.onnx_spinning``: ``auto`` spins only while a run is the process's only Piper run.
SPINNING = ("auto", "on", "off")
#: Default of ``piper.arena_release_ids``: runs with more phoneme ids (times length_scale) than this
#: give the arena's free memory back at their end (see ``_CpuSession``).
DEFAULT_RELEASE_IDS = 400

_ACTIVE_LOCK = threading.Lock()
_ACTIVE_RUNS = 0


class _CpuSession:
    """What PiperVoice runs on the CPU: a spinning and a quiet session, and when to give memory back.

    Memory: the shared arena keeps the blocks a run used, so the next run of that size costs no new
    allocations. Giving them back after every run (``memory.enable_memory_arena_shrinkage``) cost 17 %
    on long text on an idle machine (docs/benchmarks.md), so only a run bigger than ``release_ids``
    phoneme ids (times its length_scale: memory follows the length of the audio) shrinks the arena at its
    end. What the arena keeps between runs is then at most what a ``release_ids`` run needs (about
    9 s of speech, ~120 MB on the Joe voice), whatever the length of the text.

    Spinning (``piper.onnx_spinning``): ``auto`` runs a lone run on the spinning session and a run that
    overlaps another Piper run in this process on the quiet one; ``on``/``off`` always use one of them.
    The quiet session of ``auto`` is built in the background at the first overlap (a CLI never needs
    it); until it exists every run uses the spinning one. Both have the same thread count.

    The thread count is fixed for the process on purpose. ONNX Runtime's CPU kernels split their sums
    differently for different thread counts (MLAS convolution segments), so the same sentence run with one
    thread and with two differs in the last float bits, and after 16-bit rounding sometimes in a sample.
    Measured: of seven test sentences on the Joe voice, two differed between 1 and 2 threads (max 7e-6).
    An earlier adaptive scheme (every core alone, one thread per overlapping run) was faster under load but
    gave a request different bytes depending on what else was running; it failed the server's
    "50 concurrent requests, same bytes per text" test on CI and was removed.
    """

    def __init__(self, build, spinning: str = "auto", release_ids: int = DEFAULT_RELEASE_IDS):
        import onnxruntime

        self._build = build
        self.spinning = spinning
        self.release_ids = release_ids
        self._spinning = build(spin=True) if spinning != "off" else None
        self._quiet = build(spin=False) if spinning == "off" else None
        self._session = self._spinning or self._quiet
        self._quiet_lock = threading.Lock()
        self._release = onnxruntime.RunOptions()
        self._release.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._keep = onnxruntime.RunOptions()
        self.stats = {"spinning": 0, "quiet": 0, "released": 0}

    def _build_quiet(self) -> None:
        try:
            self._quiet = self._build(spin=False)
        except Exception as exc:  # noqa: BLE001 - the spinning session carries on; say why once
            _LOGGER.warning("Piper: no quiet ONNX session (%s); overlapping runs spin", exc)

    def _pick(self, alone: bool):
        if self.spinning == "on" or (alone and self.spinning == "auto"):
            return self._spinning, "spinning"
        if self._quiet is None and self._quiet_lock.acquire(blocking=False):
            threading.Thread(target=self._build_quiet, name="piper-quiet-session", daemon=True).start()
        return (self._quiet, "quiet") if self._quiet is not None else (self._spinning, "spinning")

    def releases(self, input_feed) -> bool:
        """Whether a run of this input gives the arena's free memory back at its end (its size in ids)."""
        ids = input_feed["input"].shape[-1]
        scales = input_feed.get("scales")
        length_scale = float(scales[1]) if scales is not None and len(scales) > 1 else 1.0
        return ids * length_scale > self.release_ids

    def run(self, output_names, input_feed, run_options=None):
        global _ACTIVE_RUNS
        with _ACTIVE_LOCK:
            _ACTIVE_RUNS += 1
            alone = _ACTIVE_RUNS == 1
        try:
            session, kind = self._pick(alone)
            self.stats[kind] += 1
            if run_options is None:
                release = self.releases(input_feed)
                self.stats["released"] += release
                run_options = self._release if release else self._keep
            return session.run(output_names, input_feed, run_options)
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE_RUNS -= 1

    def __getattr__(self, name: str):  # PiperVoice's other calls (inputs, providers) go to the session
        if name.startswith("_"):  # our own attributes, not set yet: no recursion through _session
            raise AttributeError(name)
        return getattr(self._session, name)


class PiperEngine:
    """One loaded Piper voice. Thread-safe: ONNX Runtime sessions allow concurrent runs."""

    name = "piper"

    def __init__(self, model_path: Path, device: str = "cpu", threads: int | None = None, spinning: str = "auto"):
        self._read_voice(model_path)
        from demod_voice import devices

        config_path = self.config_path

        use_cuda = devices.onnx_wants_cuda(device)
        if device == "gpu" and not use_cuda:
            _LOGGER.warning("no CUDA provider in onnxruntime; Piper runs on the CPU (install the 'gpu' extra)")
        # With the onnx package the graph is patched in memory to report samples per phoneme
        # (word timings); the audio is the same either way.
        self.alignments = importlib.util.find_spec("onnx") is not None
        try:
            self._voice = self._load_voice(model_path, config_path, use_cuda, threads, self.alignments, spinning)
        except Exception as exc:  # onnxruntime raises its own untyped errors for broken models
            raise InputError(f"cannot load Piper voice {model_path}: {type(exc).__name__}: {str(exc).strip()[:300]}",
                             hint="the file may be truncated or not a Piper .onnx voice") from None
        try:  # an espeak voice espeak-ng does not know fails only at the first sentence: check now
            self._voice.phonemize("a")
        except RuntimeError as exc:
            raise InputError(f"voice config {config_path} is unusable: {exc}",
                             hint="its espeak.voice must be a voice espeak-ng knows, e.g. en-us") from None
        providers = self._voice.session.get_providers()
        self.device = "gpu" if providers and providers[0] == "CUDAExecutionProvider" else "cpu"
        if device == "gpu" and use_cuda and self.device != "gpu":
            _LOGGER.warning("CUDA is not usable (no GPU or driver); Piper runs on the CPU")
        _LOGGER.info("loaded Piper voice %s on %s", model_path.name, self.device)

    @staticmethod
    def _load_voice(model_path: Path, config_path: Path, use_cuda: bool, threads: int | None, alignments: bool,
                    spinning: str = "auto"):
        """``PiperVoice.load`` with our own session(s).

        ``alignments`` adds piper-tts's phoneme-alignment output to the graph in
        memory (needs ``onnx``; the audio is unchanged), for word timings. On the
        CPU the session is a ``_CpuSession`` (shared arena given back after big
        runs; a spinning and a quiet session); ``threads`` None means one
        intra-op thread per core.
        """
        from piper import PiperVoice
        from piper.config import PiperConfig

        config = PiperConfig.from_dict(json.loads(Path(config_path).read_text(encoding="utf-8")))

        if use_cuda:
            return PiperVoice(session=_new_session(model_path, True, threads, alignments), config=config)

        def build(spin: bool):
            return _new_session(model_path, False, threads, alignments, spin=spin)

        return PiperVoice(session=_CpuSession(build, spinning), config=config)

    def _read_voice(self, model_path: Path) -> None:
        """What every backend does first: piper-tts importable, both voice files there, the config read."""
        try:
            import piper  # noqa: F401
        except ImportError:
            raise missing_extra("piper-tts", "piper") from None
        self.model_path = model_path
        self.config_path = check_voice_files(model_path)
        self.voice_config = PiperVoiceConfig.read(self.config_path)

    @property
    def nbytes(self) -> int:
        """What the voice weighs: its network file (the session holds about that much, plus working memory)."""
        try:
            return self.model_path.stat().st_size
        except OSError:
            return 0

    @property
    def sample_rate(self) -> int:
        return self.voice_config.sample_rate

    @property
    def num_speakers(self) -> int:
        return self.voice_config.num_speakers

    def speaker_id(self, speaker: str | int | None) -> int | None:
        """Resolve a speaker name or index, with a clear error for bad ones."""
        return self.voice_config.speaker_id(speaker, self.model_path.stem)

    def _syn_config(self, options: PiperOptions):
        from piper import SynthesisConfig

        return SynthesisConfig(
            speaker_id=options.speaker_id,
            length_scale=options.length_scale,
            noise_scale=options.noise_scale,
            noise_w_scale=options.noise_w,
            volume=options.volume,
            normalize_audio=options.normalize_audio,
        )

    def synthesize(self, text: str, options: PiperOptions | None = None, words: bool = False,
                   continued: bool = False, **_: object) -> Iterator[Audio]:
        """Yield one chunk per sentence; from the second on, ``sentence_silence`` comes first.

        The silence goes between sentences only (as wyoming-piper's test expects): it is put before a
        sentence rather than after one, so no chunk waits for the next to know it was not the last, and
        word timings are shifted by it. ``continued``: ``text`` follows earlier sentences of the same
        utterance (the adapter synthesises long text piece by piece), so its first sentence gets it too.

        ``words``: attach word timings (``Audio.words``) from Piper's phoneme alignments.
        """
        options = options or PiperOptions()
        syn_config = self._syn_config(options)
        silence = np.zeros(int(round(options.sentence_silence * self.sample_rate)), dtype=np.float32)
        mapper, sentences = None, 0
        if words:
            if not getattr(self, "alignments", False):
                if type(self) is PiperEngine:
                    raise missing_extra("onnx", "piper")
                raise NotAvailableError(f"word timings are not available with the {getattr(self, 'backend', '')} backend",
                                        hint="use the onnxruntime backend for captions")
            from demod_voice.alignment import PiperWordMapper

            mapper = PiperWordMapper(text, self._voice.phonemize)
            sentences = sum(1 for phonemes in self._voice.phonemize(text) if phonemes)
        try:
            for index, chunk in enumerate(self._voice.synthesize(text, syn_config=syn_config,
                                                                 include_alignments=mapper is not None)):
                samples = chunk.audio_float_array
                if options.tempo != 1.0:
                    samples = stretch(samples, options.tempo, chunk.sample_rate)
                lead = len(silence) if index or continued else 0
                if lead:
                    samples = np.concatenate([silence, samples])
                timings = None
                if mapper is not None:
                    from demod_voice.alignment import phoneme_word_spans

                    spans = phoneme_word_spans(chunk.phoneme_alignments or (), chunk.sample_rate)
                    timings = mapper.take(spans, last=index + 1 >= sentences)
                    if options.tempo != 1.0:
                        timings = [w.scaled(1.0 / options.tempo) for w in timings]
                    if lead:
                        timings = [w.shifted(lead / chunk.sample_rate) for w in timings]
                yield Audio(samples, chunk.sample_rate, words=timings)
        except (InputError, EngineError):
            raise
        except Exception as exc:
            raise EngineError(f"Piper synthesis failed: {type(exc).__name__}: {exc}") from exc

    def synthesize_all(self, text: str, options: PiperOptions | None = None) -> Audio:
        chunks = list(self.synthesize(text, options))
        if not chunks:
            raise InputError("the text produced no speech", hint="give words, not only punctuation")
        return Audio(np.concatenate([c.samples for c in chunks]), self.sample_rate)
