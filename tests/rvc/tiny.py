"""Builder used by other test areas: a shrunk random-weight RVC voice plus its auxiliary weights.

Returns the voice ``.pth`` and the config mapping (``rvc.hubert``, ``rvc.rmvpe``) that points at them.
The files come from ``demod_voice.tiny_models`` (the same builder ``health --deep`` uses).
"""

from __future__ import annotations

from pathlib import Path

from demod_voice.tiny_models import build_rvc


def build_tiny_rvc(folder: Path) -> tuple[Path, dict]:
    voice, hubert, rmvpe = build_rvc(Path(folder), seed=7)
    return voice, {"rvc": {"hubert": str(hubert), "rmvpe": str(rmvpe)}}
