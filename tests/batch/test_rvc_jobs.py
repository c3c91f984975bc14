"""RVC jobs through the CLI; runs once the RVC engine is part of the build."""

from __future__ import annotations

import pytest

pytest.importorskip("demod_voice.engines.rvc")

from tests.batch.batchutil import by_status, read_report, write_jsonl  # noqa: E402


def _piper_job(joe_voice, output: str) -> dict:
    return {"voice": str(joe_voice), "text": "A Piper line.", "output": output, "noise_scale": 0, "noise_w": 0}


def test_rvc_job_with_a_missing_model_fails_alone(cli, jobdir, joe_voice, speech_wav):
    path = write_jsonl(jobdir / "jobs.jsonl", [
        {"engine": "rvc", "input": str(speech_wav), "model": str(jobdir / "nobody.pth"), "output": "out/r.wav"},
        _piper_job(joe_voice, "out/p.wav"),
    ])
    proc = cli("batch", path, "--report", jobdir / "r.json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr.decode()
    assert by_status(read_report(jobdir / "r.json")) == {"failed": {1}, "done": {2}}
