"""Voice profiles: per-user folders of samples, quality scores and the chosen reference.

Layout (every name validated and confined to its root)::

    <data_dir>/profiles/<user>/voices/<voice>/
        manifest.json          name, engine, language, fallback voice, reference sample ids + hash
        samples/<id>.wav       the uploaded audio (mono, 32-bit float: exactly the decoded samples)
        samples/<id>.json      transcript, original file name, duration, quality score
        latents/xtts.safetensors  XTTS conditioning saved with the voice (``--save-voice``, migration),
                               used with the model that made it; dropped when the reference changes

A profile is the one kind of saved voice, whoever made it: ``voices add``,
``xtts-zero-shot --save-voice``, ``POST /v1/audio/transcriptions`` with
``collect=true``, Wyoming. Voices saved by older versions
(``<data_dir>/xtts-voices/NAME/``) become profiles of the CLI user the first
time that user's voices are opened (``migrate_legacy``).

A sample id is derived from the audio content, so uploading the same file
twice keeps one copy. The reference hash changes whenever the chosen samples
change; audio-cache keys include it, and changing the reference also drops
the voice's cached audio explicitly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from demod_voice import audio as audio_mod
from demod_voice import paths
from demod_voice.errors import InputError, LimitError, ModelNotFoundError
from demod_voice.paths import DEFAULT_USER, safe_join, validate_name  # noqa: F401 (DEFAULT_USER: re-exported)
from demod_voice.quality import score_reference

_LOGGER = logging.getLogger(__name__)


def profile_engines() -> tuple[str, ...]:
    """Engines a saved voice may name: the registry's built-in TTS engines."""
    from demod_voice.synthesis import registry

    return tuple(registry.names(kind="tts"))


#: Reference length the automatic selection aims for (seconds).
REFERENCE_MIN_S = 6.0
#: The shortest sample a profile takes: shorter ones hold too little voice for any cloning engine.
MIN_SAMPLE_S = 1.0
REFERENCE_MAX_S = 12.0

#: Where ``xtts-zero-shot --save-voice`` kept voices before they became profiles (migrated on first use).
LEGACY_XTTS_DIR = "xtts-voices"
#: The saved XTTS conditioning inside a profile's ``latents/`` folder.
SAVED_LATENTS = "xtts.safetensors"

_LOCK = threading.RLock()


@dataclass(frozen=True)
class VoiceLimits:
    """Per-user quotas on saved voices (``voices.*`` in the config): a user's profiles cannot fill the disk."""

    max_sample_s: float = 60.0
    max_per_user: int = 50
    max_samples_per_voice: int = 100
    max_user_bytes: int = 500 * 1024 * 1024
    max_description_chars: int = 1000
    max_field_chars: int = 200

    @classmethod
    def from_config(cls, cfg) -> VoiceLimits:
        return cls(max_sample_s=cfg.get("voices.max_sample_s"), max_per_user=cfg.get("voices.max_per_user"),
                   max_samples_per_voice=cfg.get("voices.max_samples_per_voice"),
                   max_user_bytes=int(cfg.get("voices.max_user_mb") * 1024 * 1024),
                   max_description_chars=cfg.get("voices.max_description_chars"),
                   max_field_chars=cfg.get("voices.max_field_chars"))

    def check_fields(self, **fields: str) -> None:
        """Text fields within their lengths (413), before anything is written."""
        for key, value in fields.items():
            limit = self.max_description_chars if key == "description" else self.max_field_chars
            if value is not None and len(value) > limit:
                setting = "voices.max_description_chars" if key == "description" else "voices.max_field_chars"
                raise LimitError(f"{key} is {len(value)} characters; the limit is {limit}",
                                 hint=f"shorten it (the limit is {setting})")


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
    def tag(self) -> str:
        """``user/name``: what cache entries of this voice are tagged with."""
        return voice_tag(self.user, self.name)

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def latents_dir(self) -> Path:
        return self.path / "latents"

    @property
    def saved_latents(self) -> Path:
        """XTTS conditioning saved with the voice (may be absent)."""
        return self.latents_dir / SAVED_LATENTS

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

    def __init__(self, data_dir: Path | str, user: str = DEFAULT_USER, cache_root: Path | None = None,
                 limits: VoiceLimits | None = None):
        self.user = validate_name(user, "user name")
        self.limits = limits or VoiceLimits()
        """Quotas checked before anything is written."""
        self.cache_root = cache_root
        """The audio cache folder to invalidate on reference changes (besides caches open in this process)."""
        self.base = Path(data_dir) / "profiles"
        self.root = safe_join(self.base, self.user, "voices", what="user name")
        if self.user == DEFAULT_USER and (Path(data_dir) / LEGACY_XTTS_DIR).is_dir():
            migrate_legacy(self, Path(data_dir) / LEGACY_XTTS_DIR)

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
        self.limits.check_fields(description=description, language=language, piper_voice=piper_voice)
        folder = self._dir(name)
        with _LOCK:
            if (folder / "manifest.json").is_file():
                raise InputError(f"voice '{name}' already exists", hint="choose another name or remove it first")
            count = sum(1 for f in self.root.iterdir() if (f / "manifest.json").is_file()) if self.root.is_dir() else 0
            if count >= self.limits.max_per_user:
                raise LimitError(f"user '{self.user}' already has {count} saved voices; the limit is "
                                 f"{self.limits.max_per_user}", hint="delete a voice first (voices.max_per_user)",
                                 status=429)
            self._check_disk()
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
                self.limits.check_fields(**{key: value})
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
        self.limits.check_fields(transcript=transcript, filename=filename)
        self._check_sample_room(profile)
        audio, filename = _decode_sample(source, filename, self.limits.max_sample_s)
        sample, wav = _prepare_sample(audio, transcript, filename)
        with _LOCK:
            self._check_sample_room(profile)
            self._check_disk(len(wav))
            _write_sample(profile.samples_dir, sample, wav)
        return sample

    def _check_sample_room(self, profile: Profile) -> None:
        count = len(list(profile.samples_dir.glob("*.wav"))) if profile.samples_dir.is_dir() else 0
        if count >= self.limits.max_samples_per_voice:
            raise LimitError(f"voice '{profile.name}' already has {count} samples; the limit is "
                             f"{self.limits.max_samples_per_voice}",
                             hint="remove a sample first (voices.max_samples_per_voice)", status=429)

    def disk_usage(self) -> int:
        """Bytes in this user's saved voices (samples, latents, manifests)."""
        total = 0
        if self.root.is_dir():
            for path in self.root.rglob("*"):
                try:
                    if path.is_file() and not path.is_symlink():
                        total += path.stat().st_size
                except OSError:
                    pass
        return total

    def _check_disk(self, adding: int = 0) -> None:
        used = self.disk_usage()
        limit = self.limits.max_user_bytes
        if used + adding > limit:
            raise LimitError(f"user '{self.user}' would use {(used + adding) / 2**20:.1f} MB of saved-voice space; "
                             f"the limit is {limit / 2**20:.1f} MB",
                             hint="delete samples or voices first (voices.max_user_mb)")

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


#: Longest reference a migrated (pre-profile) saved voice imports; longer ones are skipped with a note.
MIGRATION_MAX_S = 600.0


def _decode_sample(source: Path | bytes, filename: str, max_s: float) -> tuple[object, str]:
    """A recording decoded block by block under ``max_s`` (a small compressed file can hold hours)."""
    if isinstance(source, Path):
        filename = filename or source.name
        bounded = audio_mod._bounded_source(source, "sample", audio_mod.MAX_READ_BYTES)
        data = bounded.read_bytes() if isinstance(bounded, Path) else bounded.getvalue()
    else:
        data = bytes(source)
    audio = audio_mod.decode_upload(data, f"sample {filename or '<upload>'}", max_s, "voices.max_sample_s")
    if audio.duration < MIN_SAMPLE_S:
        raise InputError(f"sample {filename or '<upload>'} is too short ({audio.duration:.2f} s; a sample needs at "
                         f"least {MIN_SAMPLE_S:g} s)", hint="record a few seconds of speech: cloning engines need "
                                                            "several seconds of reference (XTTS at least 2 s)")
    return audio, filename


def _prepare_sample(audio, transcript: str, filename: str) -> tuple[Sample, bytes]:
    """The sample's record (id from its samples, quality score) and its float WAV bytes."""
    sid = "s" + hashlib.sha256(audio.to_pcm16() + str(audio.sample_rate).encode()).hexdigest()[:12]
    score = score_reference(audio)
    sample = Sample(id=sid, duration=round(audio.duration, 3), sample_rate=audio.sample_rate,
                    score=score.to_dict(), transcript=transcript.strip(), filename=Path(filename).name,
                    added=time.time())
    # Float, not 16-bit: a 16-bit re-save is not lossless (read divides by 32768, write multiplies
    # by 32767), and a profile must condition XTTS exactly as the uploaded file does in the CLI.
    return sample, _float_wav(audio)


def _write_sample(samples_dir: Path, sample: Sample, wav: bytes) -> None:
    samples_dir.mkdir(parents=True, exist_ok=True)
    paths.atomic_write_bytes(samples_dir / f"{sample.id}.wav", wav)
    _write_json(samples_dir / f"{sample.id}.json", sample.to_dict())


def _store_sample(samples_dir: Path, source: Path | bytes, transcript: str, filename: str) -> Sample:
    """Migration's sample import (no quotas: the voice existed before them)."""
    audio, filename = _decode_sample(source, filename, MIGRATION_MAX_S)
    sample, wav = _prepare_sample(audio, transcript, filename)
    _write_sample(samples_dir, sample, wav)
    return sample


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

    return VoiceStore(cfg.data_dir, user, default_root(cfg), VoiceLimits.from_config(cfg))


def saved_voice(cfg, name: str, user: str = DEFAULT_USER) -> Profile:
    """The saved voice ``name`` (a profile of ``user``), or an error naming the saved ones."""
    store = store_for(cfg, user)
    if not store.exists(name):
        known = [p.name for p in store.list()]
        raise ModelNotFoundError(
            f"no saved voice named '{name}'",
            hint=("saved voices: " + ", ".join(known[:12])) if known else
            "save one: demod-voice xtts-zero-shot REFERENCE --save-voice NAME, or demod-voice voices add NAME "
            "--sample FILE")
    return store.get(name)


def save_from_references(store: VoiceStore, name: str, references: list[Path], language: str) -> Profile:
    """``--save-voice``: the references become the samples and the reference of profile ``name``.

    A new profile is created (engine xtts); an existing XTTS profile keeps its other samples and gets
    these as its reference (which drops its saved conditioning and cached audio). The caller then
    writes the conditioning it computed to ``profile.saved_latents``.
    """
    created = not store.exists(name)
    if created:
        store.create(name, engine="xtts", language=language)
    else:
        profile = store.get(name)
        if profile.engine != "xtts":
            raise InputError(f"voice '{name}' exists and is spoken by {profile.engine}",
                             hint=f"choose another name, or remove it first: demod-voice voices remove {name}")
        _LOGGER.warning("replacing the reference of saved voice '%s'", name)
    try:
        ids = [store.add_sample(name, Path(ref)).id for ref in references]
        return store.set_reference(name, ids)
    except BaseException:
        if created:
            store.remove(name)  # a failed save leaves nothing behind
        raise


def check_saveable(cfg, name: str) -> None:
    """Fail before any work when ``--save-voice NAME`` could not be saved."""
    validate_name(name, "voice name")
    store = store_for(cfg)
    if store.exists(name) and store.get(name).engine != "xtts":
        raise InputError(f"voice '{name}' exists and is spoken by {store.get(name).engine}",
                         hint=f"choose another name, or remove it first: demod-voice voices remove {name}")


# --- voices saved by older versions ----------------------------------------------------

def migrate_legacy(store: VoiceStore, legacy: Path) -> None:
    """Turn ``<data_dir>/xtts-voices/NAME/`` (latents + voice.json) into profiles of ``store``'s user.

    The latents become the profile's saved conditioning (used with the model that made them);
    reference files the old voice.json names that still exist become its samples and reference, so
    the voice also works with another model. A name already taken by a profile is left in place with
    a warning. Each voice is built in a staging folder and renamed into place, so a concurrent process
    never sees half a profile.
    """
    staging_root = store.base / store.user / ".migrating"
    with _LOCK:
        for folder in sorted(p for p in legacy.iterdir() if p.is_dir()):
            if not (folder / "latents.safetensors").is_file():
                continue
            try:
                name = validate_name(folder.name, "voice name")
            except InputError:
                _LOGGER.warning("not migrating saved voice folder %s: not a valid voice name", folder)
                continue
            if store.exists(name):
                _LOGGER.warning("saved XTTS voice '%s' in %s was not migrated: a voice profile '%s' exists; "
                                "rename one of them", name, folder, name)
                continue
            staging = staging_root / f"{name}-{os.getpid()}-{threading.get_ident()}"
            try:
                _build_migrated(folder, name, staging, store.user)
                store.root.mkdir(parents=True, exist_ok=True)
                os.rename(staging, store.root / name)
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                if not store.exists(name):
                    _LOGGER.warning("could not migrate saved XTTS voice '%s' from %s: %s", name, folder, exc)
                    continue
            shutil.rmtree(folder, ignore_errors=True)
            _LOGGER.info("migrated saved XTTS voice '%s' to a voice profile in %s", name, store.root / name)
        for empty in (staging_root, legacy):
            try:
                empty.rmdir()
            except OSError:
                pass


def _build_migrated(folder: Path, name: str, staging: Path, user: str) -> None:
    try:
        meta = json.loads((folder / "voice.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "latents").mkdir(parents=True)
    shutil.copyfile(folder / "latents.safetensors", staging / "latents" / SAVED_LATENTS)
    ids = []
    for ref in meta.get("references") or []:
        path = Path(str(ref))
        # Absolute paths to regular files of a sane size only: voice.json is data (a relative path meant
        # another working folder, and /dev/zero never ends).
        if not path.is_absolute() or not path.is_file() or path.stat().st_size > audio_mod.MAX_READ_BYTES:
            continue
        try:
            ids.append(_store_sample(staging / "samples", path, "", path.name).id)
        except (InputError, OSError) as exc:
            _LOGGER.info("migrating voice '%s': not importing reference %s (%s)", name, path, exc)
    (staging / "samples").mkdir(exist_ok=True)
    ids = list(dict.fromkeys(ids))
    created = time.time()
    try:
        created = float(meta.get("created_ts") or os.stat(folder / "latents.safetensors").st_mtime)
    except (OSError, TypeError, ValueError):
        pass
    profile = Profile(name=name, user=user, path=staging, engine="xtts", language=str(meta.get("language") or "en"),
                      description="saved with xtts-zero-shot --save-voice", reference=ids,
                      reference_hash=_reference_hash(staging / "samples", ids), created=created)
    _write_json(staging / "manifest.json", profile.to_dict())
