"""Builder used by other test areas: a shrunk random-weight RVC voice plus its auxiliary weights.

Returns the voice ``.pth`` and the config mapping (``rvc.hubert``, ``rvc.rmvpe``) that points at them.
"""

from __future__ import annotations

from pathlib import Path

from tests.rvc import assets


def build_tiny_rvc(folder: Path) -> tuple[Path, dict]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    voice = assets.make_voice(folder / "voice.pth", "v2", True, 40000, seed=7)
    hubert = assets.make_hubert_folder(folder / "hubert")
    rmvpe = assets.make_rmvpe(folder / "rmvpe.pt")
    return voice, {"rvc": {"hubert": str(hubert), "rmvpe": str(rmvpe)}}
