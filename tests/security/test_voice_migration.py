"""Migrating voices saved by older versions reads their voice.json as data: odd entries are skipped,
nothing outside the data dir is touched, and a half-built voice is never visible."""

from __future__ import annotations

import json
from pathlib import Path

from demod_voice.voices import LEGACY_XTTS_DIR, VoiceStore


def legacy(data: Path, name: str, references: list[str], latents: bytes = b"latents-bytes") -> Path:
    folder = data / LEGACY_XTTS_DIR / name
    folder.mkdir(parents=True)
    (folder / "latents.safetensors").write_bytes(latents)
    (folder / "voice.json").write_text(json.dumps({"name": name, "references": references}))
    return folder


def test_odd_legacy_voices_are_skipped_or_migrated_without_their_bad_references(tmp_path, speech_wav, monkeypatch):
    from demod_voice import audio

    data = tmp_path / "data"
    short = tmp_path / "short.wav"
    short.write_bytes(b"RIFF not audio")
    clip = audio.read(speech_wav)
    audio.write(audio.Audio(clip.samples, 16000), tmp_path / "other.wav")  # real audio, named relatively below
    monkeypatch.chdir(tmp_path)
    legacy(data, "odd", ["/dev/zero", str(tmp_path / "missing.wav"), str(short), str(speech_wav), 42, "other.wav"])
    legacy(data, "..hidden", [])
    (data / LEGACY_XTTS_DIR / "empty").mkdir()  # no latents: not a saved voice
    bad_json = legacy(data, "badjson", [])
    (bad_json / "voice.json").write_text("[not json")

    store = VoiceStore(data)
    assert sorted(p.name for p in store.list()) == ["badjson", "odd"]
    odd = store.get("odd")
    assert odd.engine == "xtts" and len(odd.reference) == 1  # only the real recording became a sample
    assert odd.saved_latents.read_bytes() == b"latents-bytes"
    assert store.get("badjson").reference == [] and store.get("badjson").saved_latents.is_file()
    # What could not be migrated stays where it was; nothing half-built is left behind.
    assert (data / LEGACY_XTTS_DIR / "..hidden" / "latents.safetensors").is_file()
    assert not (data / "profiles" / "local" / ".migrating").exists()
    assert not (data / LEGACY_XTTS_DIR / "odd").exists()


def test_only_the_cli_user_gets_the_legacy_voices(tmp_path):
    data = tmp_path / "data"
    legacy(data, "mine", [])
    assert VoiceStore(data, "alice").list() == []
    assert (data / LEGACY_XTTS_DIR / "mine").is_dir()
    assert [p.name for p in VoiceStore(data).list()] == ["mine"]
    assert not (data / LEGACY_XTTS_DIR).exists()
