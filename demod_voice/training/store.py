"""Where trained voices live, per user, and how they are found by name.

A trained Piper voice is a folder ``NAME/`` holding ``NAME.onnx`` + ``NAME.onnx.json`` (what Piper loads),
``training.json`` (data, settings, steps, losses, versions), ``checkpoints/`` (``last.ckpt``, the resume point)
and, for a profile, the prepared ``dataset/``.

* The local user (the CLI, and a server without API keys) keeps them in ``<data_dir>/voices/trained/``: that is
  inside the folder the Piper catalog searches, so ``piper-infer NAME``, ``batch``, the server, Wyoming and
  ``voices list`` find them like any installed voice.
* Any other user keeps them in ``<data_dir>/profiles/<user>/trained/``, which no catalog scans: the server's
  router looks there for that user only, so another user gets a 404 for the voice.
"""

from __future__ import annotations

from pathlib import Path

from demod_voice.paths import safe_join, validate_name


def _default_user() -> str:
    from demod_voice.voices import DEFAULT_USER

    return DEFAULT_USER


def root(cfg, user: str) -> Path:
    """The folder holding ``user``'s trained voices."""
    data_dir = Path(cfg.data_dir)
    if user == _default_user():
        return data_dir / "voices" / "trained"
    return safe_join(data_dir / "profiles", validate_name(user, "user name"), "trained", what="user name")


def voice_dir(cfg, user: str, name: str) -> Path:
    return root(cfg, user) / validate_name(name, "voice name")


def model_path(cfg, user: str, name: str) -> Path:
    return voice_dir(cfg, user, name) / f"{name}.onnx"


def find(cfg, user: str, name: str) -> Path | None:
    """``user``'s trained voice ``name`` (its ``.onnx``), or None when there is none (or ``name`` is no name)."""
    try:
        onnx = model_path(cfg, user, name)
    except Exception:  # noqa: BLE001 - an invalid name is simply not a trained voice
        return None
    return onnx if onnx.is_file() and onnx.with_name(onnx.name + ".json").is_file() else None


def entries(cfg, user: str) -> list:
    """``user``'s trained voices as catalog entries (``voices list``, ``/api/voices``)."""
    from demod_voice.catalog import _read_piper_entry

    folder = root(cfg, user)
    out = []
    if folder.is_dir():
        for sub in sorted(folder.iterdir()):
            onnx = sub / f"{sub.name}.onnx"
            if onnx.is_file():
                entry = _read_piper_entry(onnx, f"trained ({user})")
                if entry:
                    out.append(entry)
    return out
