"""Builder used by other test areas (batch, server): a tiny random-weight XTTS checkpoint folder.

The files come from ``demod_voice.tiny_models`` (the same builder ``health --deep`` uses).
"""

from __future__ import annotations

from pathlib import Path

from demod_voice.tiny_models import build_xtts


def build_tiny_xtts(folder: Path) -> Path:
    return build_xtts(Path(folder))
