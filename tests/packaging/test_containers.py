"""The container path: Containerfiles install from uv.lock, the CUDA image keeps
onnxruntime-gpu, and the CI script skips cleanly where podman cannot run. The
build itself runs in CI through .ci/containers.sh (it needs root, podman and a
few minutes); test_image_lock.py compares what it installed with the lock."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "containers.sh"
SYNC_SCRIPT = ROOT / "containers" / "uv-sync.sh"
CONTAINERFILES = [ROOT / "containers" / "Containerfile", ROOT / "containers" / "Containerfile.cuda"]
UV = ROOT / ".uv" / "bin" / "uv"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    pairs = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_containerfile_shape(path):
    steps = instructions(path)
    kinds = [k for k, _ in steps]
    args = {k: [a for kk, a in steps if kk == k] for k in kinds}
    # ARG BASE_IMAGE with a public default, used by FROM.
    base = next(a for a in args["ARG"] if a.startswith("BASE_IMAGE="))
    assert re.fullmatch(r"BASE_IMAGE=docker\.io/[\w./-]+:[\w.-]+", base)
    assert args["FROM"] == ["${BASE_IMAGE}"] and kinds.index("ARG") < kinds.index("FROM")
    assert args["ENTRYPOINT"] == ['["demod-voice"]']
    assert args["USER"] == ["demod-voice"]
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")
    assert any("demod-voice" in a and "health" in a for a in args["HEALTHCHECK"])
    assert any(a.startswith("DEMO_VOICE=") for a in args["ARG"])
    # Nothing secret in a layer: the CA comes in as a build secret, never by COPY/ADD/ENV.
    assert "ADD" not in kinds
    for src in args["COPY"]:
        assert not re.search(r"cert|\.crt|\.pem|secret|netrc|pip\.conf", src, re.I), src
    assert not any("PIP_CERT" in a or "ca-certificates.crt" in a for a in args.get("ENV", []))
    assert not any("pip install" in a for a in args["RUN"])  # no second resolver: only the lock
    install_steps = [a for a in args["RUN"] if "uv-sync.sh" in a]
    assert len(install_steps) == 2 and all("--mount=type=secret,id=ca" in a for a in install_steps)
    assert "--no-install-project" in install_steps[0] and "--finish" in install_steps[1]
    assert any("uv.lock" in a for a in args["COPY"])


def build_args(path: Path) -> dict[str, str]:
    return dict(a.split("=", 1) for k, a in instructions(path) if k == "ARG" and "=" in a)


@pytest.mark.parametrize("path", CONTAINERFILES, ids=lambda p: p.name)
def test_containerfile_uses_the_makefiles_uv(path):
    pinned = re.search(r"^UV_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert build_args(path)["UV_VERSION"] == pinned


def test_sync_script_installs_only_the_lock():
    subprocess.run(["sh", "-n", str(SYNC_SCRIPT)], check=True)
    text = SYNC_SCRIPT.read_text()
    syncs = [line for line in text.splitlines() if '"$uv" sync' in line]
    assert len(syncs) == 2 and all("--locked" in line for line in syncs)
    assert "--no-install-package" in text and "UV_OFFLINE" in text
    assert not (ROOT / "containers" / "constraints.txt").exists()  # one pin list: uv.lock


def _would_install(path: Path) -> dict[str, str]:
    """What the image's `uv sync` would install (uv's dry run on this host's Python; nothing is downloaded)."""
    if not UV.exists():
        pytest.skip(f"no uv at {UV}: `make test` bootstraps the pinned uv into .uv/")
    args = build_args(path)
    extras = args["EXTRAS"].split(",") + (["demo"] if args.get("DEMO_VOICE") == "1" else [])
    cmd = [str(UV), "sync", "--locked", "--dry-run", "--offline", "--no-dev", "--no-install-project",
           *[f"--extra={e}" for e in extras],
           *[f"--no-install-package={p}" for p in args.get("NO_INSTALL_PACKAGES", "").split()]]
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(ROOT / "build" / "never-created-venv"))
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return dict(m.groups() for m in re.finditer(r"^ \+ (\S+)==(\S+)$", proc.stderr + proc.stdout, re.M))


def test_cuda_image_installs_onnxruntime_gpu_without_onnxruntime():
    plan = _would_install(CONTAINERFILES[1])
    assert "onnxruntime-gpu" in plan and "onnxruntime" not in plan
    assert {"piper-tts", "torch", "coqui-tts", "faiss-cpu", "fastapi"} <= plan.keys()


def test_cpu_image_keeps_onnxruntime():
    plan = _would_install(CONTAINERFILES[0])
    assert "onnxruntime" in plan and "onnxruntime-gpu" not in plan and "piper-tts" in plan


def test_cuda_containerfile_keeps_onnxruntime_gpu():
    args = build_args(CONTAINERFILES[1])
    assert "gpu" in args["EXTRAS"].split(",") and args["NO_INSTALL_PACKAGES"] == "onnxruntime"
    run = " ".join(a for k, a in instructions(CONTAINERFILES[1]) if k == "RUN")
    assert "CUDAExecutionProvider" in run
    env = " ".join(a for k, a in instructions(CONTAINERFILES[1]) if k == "ENV")
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in env and "NVIDIA_VISIBLE_DEVICES=all" in env


def test_build_context_ignores_everything_but_the_package():
    for name in (".containerignore", ".dockerignore"):
        lines = [ln.strip() for ln in (ROOT / name).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        assert lines[0] == "*"
        assert {"!pyproject.toml", "!uv.lock", "!demod_voice", "!containers/uv-sync.sh"} <= set(lines)


def test_script_is_valid_bash_and_documented():
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    assert "--noise-scale 0 --noise-w 0" in text and "cmp " in text
    assert 'default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]' in text
    assert 'runtime = "runc"' in text
    assert "debootstrap --variant=minbase" in text and "podman import" in text
    # Every engine inside the image, the host's uv cache reused offline, the versions checked.
    for step in ("EXTRAS=all", "health --deep", "xtts-zero-shot", "rvc-convert", " batch ", "/v1/audio/speech",
                 "tests/packaging/test_image_lock.py", "/mnt/uv-cache", "UV_OFFLINE=1"):
        assert step in text, step
    # The slim `piper` flavour: no torch, STT checked, a size budget.
    for step in ("SLIM_EXTRAS=piper,server,stt", "SLIM_MAX_MB=800", "/v1/audio/transcriptions",
                 "the piper image has torch installed", 'serve_check "$SLIM_IMAGE"'):
        assert step in text, step


def test_script_skips_cleanly_without_podman(tmp_path):
    # A PATH with the basic tools but no podman: the script must say SKIP and exit 0.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "dirname", "date", "tar", "debootstrap", "mkdir", "cat", "env"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("SKIP containers: ")
    reason = proc.stdout.removeprefix("SKIP containers: ")
    assert ("podman is not installed" in reason) or ("needs root" in reason)
