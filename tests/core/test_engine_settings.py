"""Each engine's config section is declared beside it and gathered into the one schema (issue #33 item 1).

``engines/<name>/settings.py`` holds the section's keys, defaults and ranges; ``demod_voice.config`` gathers
them (``setting.engine_sections``) without importing any engine package, so reading the config stays light.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import demod_voice
from demod_voice import config
from demod_voice.synthesis import registry

ROOT = Path(demod_voice.__file__).parent


def test_every_engine_section_comes_from_its_folder():
    for name in registry.ENGINES:
        plugin = registry.module(name)
        folder = ROOT / "engines" / plugin.__name__.split(".")[-2]
        assert (folder / "settings.py").is_file(), folder
        declared = sys.modules[f"demod_voice.engines.{folder.name}.settings"]
        assert declared.SECTION == plugin.SECTION
        assert config.SCHEMA[plugin.SECTION] is declared.SETTINGS
        assert all(f"{plugin.SECTION}.{key}" in config.SETTINGS for key in plugin.OPTION_KEYS)


def test_reading_the_config_imports_no_engine_package():
    code = ("import sys, demod_voice.config; "
            "print([m for m in sys.modules if m.startswith('demod_voice.engines.') and not m.endswith('.settings')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT.parent)
    assert out.stdout.strip() == "[]", out.stdout
