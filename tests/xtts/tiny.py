"""Builder used by other test areas (batch, server): a tiny random-weight XTTS checkpoint folder."""

from __future__ import annotations

from pathlib import Path

from tests.xtts import checkpoint


def build_tiny_xtts(folder: Path) -> Path:
    return checkpoint.build(Path(folder))
