"""GPT-SoVITS's config section (``gpt_sovits.*``): its keys, defaults and ranges, declared beside the engine.

The registry gathers this file into the one schema (``demod_voice.config``, ``registry.settings_modules``),
loading it by itself rather than through the engine's package, so reading the config never imports model
code. It imports nothing but the ``Setting`` type.
"""

from __future__ import annotations

from demod_voice.setting import Setting as S

SECTION = "gpt_sovits"

SETTINGS = {
    "install_dir": S("path", None, "a GPT-SoVITS checkout (with api_v2.py) that 'gpt-sovits start' runs", nullable=True),
    "python": S("path", None, "its Python; default <install_dir>/runtime/python, <install_dir>/.venv/bin/python, "
                              "else this one", nullable=True),
    "config": S("str", "GPT_SoVITS/configs/tts_infer.yaml", "api_v2's -c config, relative to install_dir"),
    "port": S("int", 9880, "port 'gpt-sovits start' binds on 127.0.0.1", min=1, max=65535),
    "url": S("str", None, "api_v2 server the engine calls; default http://127.0.0.1:<port of the running one>",
             nullable=True),
    "start_timeout_s": S("float", 180.0, "how long 'gpt-sovits start' waits for the server to answer", min=1.0),
    "timeout_s": S("float", 300.0, "HTTP timeout of one /tts request", min=0.1),
    "streaming": S("bool", False, "ask api_v2 for streaming_mode (audio chunks as they are made)"),
    "top_k": S("int", 5, "top-k sampling", min=1, max=100),
    "top_p": S("float", 1.0, "nucleus sampling", min=0.01, max=1.0),
    "temperature": S("float", 1.0, "sampling temperature", min=0.01, max=2.0),
    "speed_factor": S("float", 1.0, "speaking rate", min=0.25, max=4.0),
}
