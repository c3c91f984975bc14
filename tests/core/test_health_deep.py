"""`health --deep` runs every installed engine on one word and says `broken` with the reason.

Real engines, real children: Piper with the Joe voice, XTTS and RVC on the tiny random-weight
models health builds itself (no model is installed in the isolated home). The broken cases are
genuinely broken installs (a corrupt voice, model and auxiliary weights), not mocks.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import cli_env

pytestmark = pytest.mark.slow


def _health_and_imports(*args: str) -> tuple[int, dict, set[str]]:
    """Run `health ARGS --json` in a fresh interpreter: (exit code, report, top-level modules it imported)."""
    code = (
        "import contextlib, io, json, sys\n"
        "from demod_voice.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main({['health', *args, '--json']!r})\n"
        "print(json.dumps({'rc': rc, 'report': json.loads(out.getvalue()),\n"
        "                  'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=1800)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    return result["rc"], result["report"], set(result["modules"])


def _runs(report: dict) -> dict:
    return {c["name"]: c for c in report["checks"] if c["name"].endswith("-run")}


def test_deep_runs_every_engine_and_stays_torch_free(isolated_home):
    rc, report, modules = _health_and_imports("--deep")
    runs = _runs(report)
    assert set(runs) == {"piper-run", "xtts-run", "rvc-run", "styletts2-run"}
    for name, check in runs.items():
        assert check["ok"] and check["data"]["status"] == "ok", (name, check["detail"])
    assert "en_US-joe-medium" in runs["piper-run"]["detail"]
    assert "tiny random-weight checkpoint" in runs["xtts-run"]["detail"] and "24000 Hz" in runs["xtts-run"]["detail"]
    assert "40000 Hz" in runs["rvc-run"]["detail"]
    assert "tiny random-weight checkpoint" in runs["styletts2-run"]["detail"]
    assert rc == 0 and report["healthy"]
    # The engines ran in children: the health process itself imported none of them.
    assert not modules & {"torch", "TTS", "transformers", "piper", "faiss"}, modules
    # The tiny XTTS checkpoint is built once and reused.
    assert len(list((isolated_home / "cache" / "demod-voice" / "selftest").glob("xtts-tiny-*"))) == 1


def test_deep_reports_broken_engines_with_the_reason(isolated_home, tmp_path):
    voice = tmp_path / "broken.onnx"
    voice.write_bytes(b"not an onnx model")
    (tmp_path / "broken.onnx.json").write_text(json.dumps({"audio": {"sample_rate": 22050}, "num_speakers": 1,
                                                           "phoneme_id_map": {"_": [0]}, "espeak": {"voice": "en-us"}}))
    xtts = tmp_path / "xtts"
    xtts.mkdir()
    for name, content in (("config.json", "{}"), ("model.pth", "garbage"), ("vocab.json", "{}")):
        (xtts / name).write_text(content)
    hubert = tmp_path / "hubert.pt"
    hubert.write_bytes(b"garbage")
    rmvpe = tmp_path / "rmvpe.pt"
    rmvpe.write_bytes(b"garbage")
    styletts2 = tmp_path / "styletts2"
    styletts2.mkdir()
    (styletts2 / "config.yml").write_text("model_params: {}\n")
    (styletts2 / "epochs_2nd_00020.pth").write_bytes(b"garbage")
    config = tmp_path / "config.yaml"
    config.write_text(f"piper:\n  default_voice: {voice}\nxtts:\n  model_dir: {xtts}\n"
                      f"rvc:\n  hubert: {hubert}\n  rmvpe: {rmvpe}\nstyletts2:\n  model_dir: {styletts2}\n")
    rc, report, _ = _health_and_imports("--config", str(config), "--deep")
    runs = _runs(report)
    for name, check in runs.items():
        assert not check["ok"] and check["required"], (name, check)
        assert check["data"]["status"] == "broken"
        assert check["detail"].startswith("broken: ") and len(check["detail"]) > len("broken: ") + 10, check["detail"]
    assert rc == 1 and not report["healthy"]


def test_plain_health_runs_no_engine(cli):
    proc = cli("health", "--json")
    assert proc.returncode == 0
    assert not _runs(json.loads(proc.stdout))
