"""One audio-cache key for the CLI, batch and the server (issue #33 item 5).

The same request from ``piper-infer``, a batch job and ``POST /api/tts`` is one cache entry: the CLI
stores it, the batch job and the server find it. To prove they *read* the entry rather than compute
equal audio again, the test overwrites the stored bytes with a different (valid) WAV after the CLI
run: the batch output and the HTTP answer must then be exactly those bytes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import httpx
import numpy as np

from tests.core.test_same_audio import JOE, TEXT, Home
from tests.server.conftest import start_server, stop_server


def entries(root: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(root / "index.sqlite") as db:
        return db.execute("SELECT key, size FROM entries").fetchall()


def test_cli_batch_and_server_share_one_entry(tmp_path, isolated_home, joe_voice):
    from demod_voice import audio as audio_mod

    home = Home(tmp_path / "case", {"cache": {"enabled": True}})
    cache_root = home.root / "cache" / "audio"

    first = home.cli("piper-infer", JOE, TEXT, "-o", home.root / "cli.wav")
    assert b"and cached it" in first.stdout + first.stderr
    [(key, _)] = entries(cache_root)

    # a marker in place of the stored audio: whoever answers with it read the entry
    marker = audio_mod.encode(audio_mod.Audio(np.linspace(-0.5, 0.5, 2205, dtype=np.float32), 22050), "wav")
    assert marker != (home.root / "cli.wav").read_bytes()
    (cache_root / key[:2] / f"{key}.bin").write_bytes(marker)

    jobs = home.root / "jobs.jsonl"
    jobs.write_text(json.dumps({"engine": "piper", "voice": JOE, "text": TEXT,
                                "output": str(home.root / "batch.wav")}) + "\n")
    home.cli("batch", jobs, "--no-resume")
    assert (home.root / "batch.wav").read_bytes() == marker, "the batch job computed its own entry"
    assert [k for k, _ in entries(cache_root)] == [key]

    proc, url = start_server(home.root / "server", home.config.read_text())
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            res = client.post("/api/tts", json={"text": TEXT, "voice": JOE, "format": "wav"})
    finally:
        stop_server(proc)
    assert res.status_code == 200, res.text
    assert res.headers["x-cache"] == "hit" and res.headers["x-engine"] == "piper"
    assert res.content == marker
    assert [k for k, _ in entries(cache_root)] == [key], "the server stored a second entry"


def test_the_key_ignores_how_a_request_is_spelled(tmp_path, isolated_home, joe_voice):
    """A voice name or its path (anywhere: contents, not paths), an option left out or given its default:
    one key. A different option, format, user or text: another."""
    from demod_voice import config
    from demod_voice.synthesis import Request
    from demod_voice.synthesis.keys import HTTP_WHOLE, STREAM, audio_key

    cfg = config.load(None, environ={}, user_file=Path("/nonexistent"))
    copy = tmp_path / "elsewhere" / "joe.onnx"
    copy.parent.mkdir()
    shutil.copy(joe_voice, copy)
    shutil.copy(f"{joe_voice}.json", f"{copy}.json")

    def key(request=None, **kw):
        return audio_key("piper", request or Request(text=TEXT, voice=JOE), cfg, fmt=kw.pop("fmt", "wav"), **kw)

    base = key()
    default_noise = cfg.get("piper.noise_scale")
    assert key(Request(text=TEXT, voice=str(joe_voice))) == base
    assert key(Request(text=TEXT, voice=str(copy))) == base
    assert key(Request(text=f"  {TEXT}  ", voice=JOE)) == base  # normalised text
    if default_noise is not None:
        assert key(Request(text=TEXT, voice=JOE, options={"noise_scale": default_noise})) == base
    assert key(Request(text=TEXT, voice=JOE, options={"noise_scale": 0.1})) != base
    assert key(Request(text=TEXT, voice=JOE, speed=1.5)) != base
    assert key(Request(text=TEXT + " More.", voice=JOE)) != base
    assert key(fmt="flac") != base
    assert key(scope="alice") != base
    assert key(how=STREAM) != base
    assert key(how=HTTP_WHOLE) == base  # a whole WAV is the same bytes from the server as from a file
    assert key(fmt="mp3", how=HTTP_WHOLE) != key(fmt="mp3")  # PyAV there, libsndfile here
