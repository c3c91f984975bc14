"""XTTS (and RVC) jobs through the CLI; these run once those engines are part of the build.

With the engine present:
* a job whose model is missing fails on its own with the engine's message while Piper jobs run;
* with a tiny random-weight model (built by the engine area's test helper, when it provides one:
  ``tests/xtts/tiny.py: build_tiny_xtts(folder) -> model folder`` and
  ``tests/rvc/tiny.py: build_tiny_rvc(folder) -> (model .pth, config dict)``), jobs produce decodable audio
  and XTTS jobs sharing a reference form one group (one conditioning).
"""

from __future__ import annotations

import pytest
import yaml

pytest.importorskip("demod_voice.engines.xtts")

from tests.batch.batchutil import by_status, decode, read_report, write_jsonl  # noqa: E402


def _piper_job(joe_voice, output: str) -> dict:
    return {"voice": str(joe_voice), "text": "A Piper line.", "output": output, "noise_scale": 0, "noise_w": 0}


def test_xtts_job_with_a_missing_model_fails_alone(cli, jobdir, joe_voice, speech_wav):
    path = write_jsonl(jobdir / "jobs.jsonl", [
        {"engine": "xtts", "reference": str(speech_wav), "text": "Hello.", "output": "out/x1.wav",
         "model": str(jobdir / "no-such-xtts")},
        {"engine": "xtts", "reference": str(speech_wav), "text": "Again.", "output": "out/x2.wav",
         "model": str(jobdir / "no-such-xtts")},
        _piper_job(joe_voice, "out/p.wav"),
    ])
    proc = cli("batch", path, "--report", jobdir / "r.json")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr.decode()
    report = read_report(jobdir / "r.json")
    assert by_status(report) == {"failed": {1, 2}, "done": {3}}
    assert all("unexpected" not in j["error"]["message"] for j in report["jobs"] if j["error"])
    assert sorted(p.name for p in (jobdir / "out").iterdir()) == ["p.wav"]


@pytest.mark.slow
def test_tiny_xtts_and_rvc_jobs(cli, jobdir, joe_voice, speech_wav):
    pytest.importorskip("demod_voice.engines.rvc")
    tiny_xtts = pytest.importorskip("tests.xtts.tiny")
    tiny_rvc = pytest.importorskip("tests.rvc.tiny")
    xtts_dir = tiny_xtts.build_tiny_xtts(jobdir / "xtts-tiny")
    rvc_model, rvc_cfg = tiny_rvc.build_tiny_rvc(jobdir / "rvc-tiny")
    config = jobdir / "config.yaml"
    config.write_text(yaml.safe_dump({"xtts": {"model_dir": str(xtts_dir)}, **rvc_cfg}))
    path = write_jsonl(jobdir / "jobs.jsonl", [
        {"reference": str(speech_wav), "text": "First cloned line.", "output": "out/x1.wav", "language": "en"},
        {"reference": str(speech_wav), "text": "Second cloned line.", "output": "out/x2.wav", "language": "en"},
        {"input": str(speech_wav), "model": str(rvc_model), "output": "out/r.wav", "pitch": 2},
        _piper_job(joe_voice, "out/p.wav"),
        {"reference": str(jobdir / "absent.wav"), "text": "Invalid.", "output": "out/bad.wav"},
    ])
    proc = cli("batch", path, "--config", config, "--report", jobdir / "r.json")
    assert proc.returncode == 1, proc.stderr.decode()
    assert by_status(read_report(jobdir / "r.json")) == {"done": {1, 2, 3, 4}, "invalid": {5}}
    for name in ("x1.wav", "x2.wav", "r.wav", "p.wav"):
        decode(jobdir / "out" / name)
