"""Voice profiles: per-user folders of samples, quality scores and the chosen reference.

Layout (every name validated and confined to its root)::

    <data_dir>/profiles/<user>/voices/<voice>/
        manifest.json          name, engine, language, fallback voice, reference sample ids + hash
        samples/<id>.wav       the uploaded audio (mono, 32-bit float: exactly the decoded samples)
        samples/<id>.json      transcript, original file name, duration, quality score
        latents/               engine conditioning cache (XTTS writes here)

A sample id is derived from the audio content, so uploading the same file
twice keeps one copy. The reference hash changes whenever the chosen samples
change; audio-cache keys include it, and changing the reference also drops
the voice's cached audio explicitly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from demod_voice import audio as audio_mod
from demod_voice import paths
from demod_voice.errors import InputError, ModelNotFoundError
from demod_voice.paths import safe_join, validate_name
from demod_voice.quality import score_reference

_LOGGER = logging.getLogger(__name__)

#: The user the CLI (and an unauthenticated server) acts as.
DEFAULT_USER = "local"


def profile_engines() -> tuple[str, ...]:
    """Engines a saved voice may name: the registry's built-in TTS engines."""
    from demod_voice.adapters import registry

    return tuple(registry.names(kind="tts"))


#: Reference length the automatic selection aims for (seconds).
REFERENCE_MIN_S = 6.0
REFERENCE_MAX_S = 12.0

_LOCK = threading.RLock()


# --- profiles -------------------------------------------------------------------------

@dataclass
class Sample:
    id: str
    duration: float
    sample_rate: int
    score: dict
    transcript: str = ""
    filename: str = ""
    added: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Profile:
    """One saved voice: what the router needs to serve it."""

    name: str
    user: str
    path: Path
    engine: str = "xtts"
    language: str = "en"
    piper_voice: str = ""
    """The Piper voice used when the profile's engine is unavailable ('' = the configured default)."""
    description: str = ""
    reference: list[str] = field(default_factory=list)
    reference_hash: str = ""
    created: float = 0.0

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def latents_dir(self) -> Path:
        return self.path / "latents"

    def reference_paths(self) -> list[Path]:
        return [self.samples_dir / f"{sid}.wav" for sid in self.reference]

    def to_dict(self) -> dict:
        return {"name": self.name, "user": self.user, "engine": self.engine, "language": self.language,
                "piper_voice": self.piper_voice, "description": self.description, "reference": list(self.reference),
                "reference_hash": self.reference_hash, "created": self.created}


def _write_json(path: Path, data: dict) -> None:
    paths.atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _reference_hash(samples_dir: Path, ids: list[str]) -> str:
    if not ids:
        return ""
    digest = hashlib.sha256()
    for sid in ids:
        digest.update(sid.encode() + b"\0")
    return digest.hexdigest()[:16]


def _float_wav(audio) -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio.samples, audio.sample_rate, format="WAV", subtype="FLOAT")
    return buf.getvalue()


class VoiceStore:
    """The voice profiles of one user."""

    def __init__(self, data_dir: Path | str, user: str = DEFAULT_USER, cache_root: Path | None = None):
        self.user = validate_name(user, "user name")
        self.cache_root = cache_root
        """The audio cache folder to invalidate on reference changes (besides caches open in this process)."""
        self.base = Path(data_dir) / "profiles"
        self.root = safe_join(self.base, self.user, "voices", what="user name")

    # -- voices --
    def _dir(self, name: str) -> Path:
        # ``root`` is resolved once; a validated name has no separator and is never "." or "..",
        # so joining it cannot leave the root (and skips a realpath per request).
        return self.root / validate_name(name, "voice name")

    def exists(self, name: str) -> bool:
        return (self._dir(name) / "manifest.json").is_file()

    def get(self, name: str) -> Profile:
        folder = self._dir(name)
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            raise ModelNotFoundError(f"no saved voice '{name}' for user '{self.user}'",
                                     hint="list them with 'demod-voice voices list' (GET /api/voices)")
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"voice '{name}' has an unreadable manifest: {exc}", hint=f"check {manifest}") from None
        return Profile(name=name, user=self.user, path=folder, engine=data.get("engine", "xtts"),
                       language=data.get("language", "en"), piper_voice=data.get("piper_voice", ""),
                       description=data.get("description", ""), reference=list(data.get("reference", [])),
                       reference_hash=data.get("reference_hash", ""), created=float(data.get("created", 0)))

    def list(self) -> list[Profile]:
        if not self.root.is_dir():
            return []
        out = []
        for folder in sorted(self.root.iterdir()):
            if (folder / "manifest.json").is_file():
                try:
                    out.append(self.get(folder.name))
                except InputError as exc:
                    _LOGGER.warning("%s", exc.message)
        return out

    def _save(self, profile: Profile) -> None:
        _write_json(profile.path / "manifest.json", profile.to_dict())

    def create(self, name: str, engine: str = "xtts", language: str = "en", piper_voice: str = "",
               description: str = "") -> Profile:
        if engine not in profile_engines():
            raise InputError(f"unknown engine '{engine}' for a saved voice", hint="choose " + " or ".join(profile_engines()),
                             param="engine", code="invalid_value")
        if piper_voice:
            validate_name(piper_voice, "Piper voice name")
        folder = self._dir(name)
        with _LOCK:
            if (folder / "manifest.json").is_file():
                raise InputError(f"voice '{name}' already exists", hint="choose another name or remove it first")
            (folder / "samples").mkdir(parents=True, exist_ok=True)
            (folder / "latents").mkdir(exist_ok=True)
            profile = Profile(name=name, user=self.user, path=folder, engine=engine, language=language,
                              piper_voice=piper_voice, description=description, created=time.time())
            self._save(profile)
        return profile

    def update(self, name: str, **changes) -> Profile:
        with _LOCK:
            profile = self.get(name)
            for key, value in changes.items():
                if value is None:
                    continue
                if key == "engine" and value not in profile_engines():
                    raise InputError(f"unknown engine '{value}'", hint="choose " + " or ".join(profile_engines()),
                                     param="engine", code="invalid_value")
                if key not in ("engine", "language", "piper_voice", "description"):
                    raise InputError(f"cannot change '{key}' of a voice")
                if key == "piper_voice" and value:
                    validate_name(value, "Piper voice name")
                setattr(profile, key, value)
            self._save(profile)
        return profile

    def remove(self, name: str) -> None:
        profile = self.get(name)
        with _LOCK:
            shutil.rmtree(profile.path)
        _invalidate_cache(self.user, name, self.cache_root)

    # -- samples --
    def add_sample(self, name: str, source: Path | bytes, transcript: str = "", filename: str = "") -> Sample:
        """Store a recording (any format libsndfile reads) as mono WAV and score it."""
        profile = self.get(name)
        data = Path(source).read_bytes() if isinstance(source, Path) else bytes(source)
        if isinstance(source, Path) and not filename:
            filename = source.name
        audio = audio_mod.read(data, what=f"sample {filename or '<upload>'}")
        if audio.duration < 0.1:
            raise InputError(f"sample {filename or '<upload>'} is too short ({audio.duration:.2f} s)",
                             hint="record at least a few seconds of speech")
        sid = "s" + hashlib.sha256(audio.to_pcm16() + str(audio.sample_rate).encode()).hexdigest()[:12]
        score = score_reference(audio)
        sample = Sample(id=sid, duration=round(audio.duration, 3), sample_rate=audio.sample_rate,
                        score=score.to_dict(), transcript=transcript.strip(), filename=Path(filename).name,
                        added=time.time())
        with _LOCK:
            profile.samples_dir.mkdir(parents=True, exist_ok=True)
            # Float, not 16-bit: a 16-bit re-save is not lossless (read divides by 32768, write multiplies
            # by 32767), and a profile must condition XTTS exactly as the uploaded file does in the CLI.
            paths.atomic_write_bytes(profile.samples_dir / f"{sid}.wav", _float_wav(audio))
            _write_json(profile.samples_dir / f"{sid}.json", sample.to_dict())
        return sample

    def samples(self, name: str) -> list[Sample]:
        profile = self.get(name)
        out = []
        for meta in sorted(profile.samples_dir.glob("*.json")):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
                out.append(Sample(**{k: data[k] for k in Sample.__dataclass_fields__ if k in data}))
            except (OSError, ValueError, TypeError) as exc:
                _LOGGER.warning("skipping unreadable sample metadata %s: %s", meta, exc)
        return sorted(out, key=lambda s: s.added)

    def remove_sample(self, name: str, sample_id: str) -> None:
        profile = self.get(name)
        validate_name(sample_id, "sample id")
        wav = safe_join(profile.samples_dir, f"{sample_id}.wav", what="sample id")
        if not wav.is_file():
            raise ModelNotFoundError(f"voice '{name}' has no sample '{sample_id}'")
        with _LOCK:
            wav.unlink()
            wav.with_suffix(".json").unlink(missing_ok=True)
            if sample_id in profile.reference:
                self.set_reference(name, [s for s in profile.reference if s != sample_id])

    # -- reference --
    def set_reference(self, name: str, sample_ids: list[str]) -> Profile:
        with _LOCK:
            profile = self.get(name)
            known = {s.id for s in self.samples(name)}
            for sid in sample_ids:
                validate_name(sid, "sample id")
                if sid not in known:
                    raise InputError(f"voice '{name}' has no sample '{sid}'",
                                     hint="list them with 'demod-voice voices samples list " + name + "'")
            ids = list(dict.fromkeys(sample_ids))
            changed = ids != profile.reference
            profile.reference = ids
            profile.reference_hash = _reference_hash(profile.samples_dir, ids)
            self._save(profile)
            if changed:
                shutil.rmtree(profile.latents_dir, ignore_errors=True)
                profile.latents_dir.mkdir(exist_ok=True)
        if changed:
            _invalidate_cache(self.user, name, self.cache_root)
        return profile

    def auto_reference(self, name: str, min_s: float = REFERENCE_MIN_S, max_s: float = REFERENCE_MAX_S) -> Profile:
        """Pick the best-scoring samples whose total length lands in [min_s, max_s].

        Greedy by score: take a sample if it still fits under ``max_s``; stop once
        ``min_s`` is reached. If no combination reaches ``min_s`` all fitting
        samples are used; if every sample is longer than ``max_s`` the best one
        is used alone.
        """
        chosen = choose_reference(self.samples(name), min_s, max_s)
        if not chosen:
            raise InputError(f"voice '{name}' has no usable samples",
                             hint="add recordings with 'demod-voice voices samples add " + name + " FILE'")
        return self.set_reference(name, chosen)


def choose_reference(samples: list[Sample], min_s: float, max_s: float) -> list[str]:
    """The sample ids ``auto_reference`` picks (see there); empty when no sample is usable."""
    ranked = sorted((s for s in samples if s.score.get("overall", 0) > 0),
                    key=lambda s: (-s.score.get("overall", 0), s.added))
    chosen, total = [], 0.0
    for sample in ranked:
        if total >= min_s:
            break
        if total + sample.duration <= max_s:
            chosen.append(sample.id)
            total += sample.duration
    if not chosen and ranked:
        chosen = [ranked[0].id]
    return chosen


def _invalidate_cache(user: str, voice: str, cache_root: Path | None) -> None:
    """Drop cached audio of a voice in every audio cache this process opened, and in ``cache_root``."""
    from demod_voice import cache

    cache.invalidate_everywhere(voice_tag(user, voice))
    if cache_root is not None:
        cache.invalidate_on_disk(cache_root, voice_tag(user, voice))


def voice_tag(user: str, voice: str) -> str:
    return f"{user}/{voice}"


def profile_voices(cfg) -> list:
    """Catalog lister: the CLI user's saved voices as ``VoiceEntry`` rows."""
    from demod_voice.catalog import VoiceEntry

    store = VoiceStore(cfg.data_dir, DEFAULT_USER)
    return [VoiceEntry(name=p.name, engine=p.engine, language=p.language, source="profile", path=str(p.path),
                       extra={"reference": p.reference}) for p in store.list()]


def store_for(cfg, user: str = DEFAULT_USER) -> VoiceStore:
    """The store of ``user`` under the configured data dir, wired to the configured audio cache."""
    from demod_voice.cache import default_root

    return VoiceStore(cfg.data_dir, user, default_root(cfg))
