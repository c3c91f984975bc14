"""One engine contract (issue #33 item 3): frozen options per engine, load / condition / synthesize / unload.

The options an engine runs with are a frozen dataclass its plugin builds once from the schema; no
string-keyed option dict is splatted into an engine (``**plan.values`` and the like are gone). The loaded
engine is a handle with ``condition``, ``synthesize`` and ``unload``, and unloading really drops it from
the model manager (the next request loads it again, with the same audio).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import demod_voice
from demod_voice.synthesis import Request, contract

ENGINES = Path(demod_voice.__file__).parent / "engines"


def test_no_option_dict_is_splatted_into_an_engine():
    found = []
    for path in ENGINES.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            # a call that splats a plan's or options' dict (a ``**sampling: Any`` parameter is no call)
            if re.search(r"\*\*(plan\.\w+|values|sampling|options\()(?!\w*\s*:)", line):
                found.append(f"{path.relative_to(ENGINES)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("engine,options", [("xtts", "XttsOptions"), ("styletts2", "StyleTTS2Options"),
                                            ("gpt-sovits", "GptSovitsOptions"), ("rvc", "RvcOptions")])
def test_each_engine_has_frozen_options_named_by_the_schema(engine, options):
    from demod_voice.config import SETTINGS
    from demod_voice.synthesis import registry

    plugin = registry.module(engine)
    cls = getattr(plugin, options)
    assert plugin.OPTION_KEYS == contract.option_keys(cls)
    assert all(f"{plugin.SECTION}.{key}" in SETTINGS for key in plugin.OPTION_KEYS)
    assert cls.__dataclass_params__.frozen


def test_built_options_are_validated_and_frozen():
    from demod_voice import config
    from demod_voice.engines.xtts.plugin import XttsOptions
    from demod_voice.errors import InputError

    cfg = config.load(None, environ={}, user_file=Path("/nonexistent"))
    built = contract.build_options(XttsOptions, "xtts", {"top_k": "7"}, cfg)
    assert built.top_k == 7 and built.temperature == cfg.get("xtts.temperature")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.top_k = 8
    with pytest.raises(InputError, match="top_p"):
        contract.build_options(XttsOptions, "xtts", {"top_p": 7}, cfg)


def test_tts_handles_implement_the_contract():
    from demod_voice.engines.piper.plugin import PiperHandle
    from demod_voice.engines.styletts2.plugin import StyleTTS2Handle
    from demod_voice.engines.xtts.plugin import XttsHandle

    for handle in (PiperHandle, XttsHandle, StyleTTS2Handle):
        assert issubclass(handle, contract.Engine), handle


def test_piper_handle_speaks_unloads_and_reloads(joe_voice):
    from demod_voice import config, synthesis
    from demod_voice.audio import concat
    from demod_voice.engines.piper import plugin
    from demod_voice.synthesis.manager import MODELS

    cfg = config.load(None, environ={}, user_file=Path("/nonexistent"))
    request = Request(text="One sentence. And another.", voice=str(joe_voice), options={"noise_scale": 0.0,
                                                                                        "noise_w": 0.0})
    plan = plugin.options(request, cfg)
    handle = plugin.load(plan, cfg, "cpu")
    assert isinstance(handle, contract.Engine)
    direct = concat(list(handle.synthesize(request.text, handle.condition([]), plan))).to_pcm16()
    assert direct == concat(list(synthesis.synthesize("piper", request, cfg, "cpu"))).to_pcm16()
    assert any(m["model"] == joe_voice.name for m in MODELS.status("piper"))

    handle.unload()
    assert not any(m["model"] == joe_voice.name for m in MODELS.status("piper"))
    again = plugin.load(plan, cfg, "cpu")
    assert again.model is not handle.model
    assert concat(list(again.synthesize(request.text, None, plan))).to_pcm16() == direct
