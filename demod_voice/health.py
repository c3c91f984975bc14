"""Environment report: what works on this machine and what does not.

Built from package metadata and cheap probes so it runs in well under a
second; torch is imported only when CUDA is explicitly probed.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from demod_voice import __version__

#: Capability -> distributions it needs (metadata names).
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "piper": ("piper-tts", "onnxruntime"),
    "xtts": ("coqui-tts", "torch", "torchaudio"),
    "rvc": ("torch", "transformers", "faiss-cpu", "pyworld", "torchcrepe"),
    "server": ("fastapi", "uvicorn"),
    "ray": ("ray",),
    "tinygrad": ("tinygrad",),
    "transcribe": ("faster-whisper",),
}
#: Capabilities whose failure makes ``health`` exit 1 unless asked otherwise.
DEFAULT_REQUIRED = ("config", "piper")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = False
    data: dict = field(default_factory=dict)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def check_capability(name: str) -> Check:
    versions = {dist: _version(dist) for dist in CAPABILITIES[name]}
    missing = [d for d, v in versions.items() if v is None]
    if missing:
        return Check(name, False, f"missing {', '.join(missing)} (pip install 'demod-voice[{name}]')", data=versions)
    return Check(name, True, ", ".join(f"{d} {v}" for d, v in versions.items()), data=versions)


def check_onnxruntime_providers() -> Check:
    if importlib.util.find_spec("onnxruntime") is None:
        return Check("onnxruntime-gpu", False, "onnxruntime not installed")
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in providers
    return Check("onnxruntime-gpu", has_cuda, ", ".join(providers), data={"providers": providers})


def check_torch_cuda() -> Check:
    if importlib.util.find_spec("torch") is None:
        return Check("torch-cuda", False, "torch not installed")
    import torch

    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return Check("torch-cuda", True, f"CUDA {torch.version.cuda}: {', '.join(names)}", data={"devices": names})
    return Check("torch-cuda", False, f"torch {torch.__version__}: no CUDA device", data={})


def check_tinygrad_devices() -> Check:
    """Devices tinygrad can open (the tinygrad Piper backend runs on the first one)."""
    if importlib.util.find_spec("tinygrad") is None:
        return Check("tinygrad-devices", False, "tinygrad not installed")
    from demod_voice.engines.piper_tinygrad import available_devices

    try:
        devices = available_devices()
    except Exception as exc:  # a broken runtime must not hide the rest of the report
        return Check("tinygrad-devices", False, f"{type(exc).__name__}: {exc}")
    if not devices:
        return Check("tinygrad-devices", False, "none usable (its CPU device needs the 'clang' compiler)",
                     data={"devices": []})
    return Check("tinygrad-devices", True, ", ".join(devices), data={"devices": devices})


def check_ffmpeg() -> Check:
    exe = shutil.which("ffmpeg")
    if not exe:
        return Check("ffmpeg", False, "not found (optional: demod-voice encodes and decodes every format with PyAV's "
                                      "bundled libraries; only torchaudio.load/torchcodec would use it)")
    try:
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        first = exe
    return Check("ffmpeg", True, first)


def check_config(cfg_loader) -> tuple[Check, object | None]:
    from demod_voice.errors import ConfigError

    try:
        cfg = cfg_loader()
    except ConfigError as exc:
        return Check("config", False, str(exc), required=True), None
    files = ", ".join(cfg.files) or "defaults only"
    return Check("config", True, files, required=True), cfg


def check_voices(cfg) -> Check:
    from demod_voice.catalog import list_voices

    try:
        voices = list_voices(cfg)
    except Exception as exc:  # a broken lister must not hide the rest of the report
        return Check("voices", False, f"{type(exc).__name__}: {exc}")
    by_engine: dict[str, int] = {}
    for voice in voices:
        by_engine[voice.engine] = by_engine.get(voice.engine, 0) + 1
    detail = ", ".join(f"{n} {e}" for e, n in by_engine.items()) or "none found"
    return Check("voices", bool(voices), detail, data={"voices": [v.name for v in voices]})


def run_checks(cfg_loader, require: tuple[str, ...] = (), probe_cuda: bool = False) -> dict:
    """Run every check; ``require`` names capabilities whose failure is fatal."""
    checks: list[Check] = []
    config_check, cfg = check_config(cfg_loader)
    checks.append(config_check)
    for name in CAPABILITIES:
        checks.append(check_capability(name))
    gpu = check_onnxruntime_providers()
    checks.append(gpu)
    if probe_cuda:
        checks.append(check_torch_cuda())
    checks.append(check_tinygrad_devices())
    checks.append(check_ffmpeg())
    if cfg is not None:
        checks.append(check_voices(cfg))
    wanted = set(DEFAULT_REQUIRED) | set(require)
    for check in checks:
        if check.name in wanted or (check.name in ("onnxruntime-gpu", "torch-cuda") and "gpu" in wanted):
            check.required = True
    if "gpu" in wanted and not any(c.ok for c in checks if c.name in ("onnxruntime-gpu", "torch-cuda")):
        for c in checks:
            if c.name in ("onnxruntime-gpu", "torch-cuda"):
                c.required = True
    elif "gpu" in wanted:  # one working GPU path is enough
        for c in checks:
            if c.name in ("onnxruntime-gpu", "torch-cuda") and not c.ok:
                c.required = False
    healthy = all(c.ok for c in checks if c.required)
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "healthy": healthy,
        "checks": [asdict(c) for c in checks],
    }


def format_table(report: dict) -> str:
    lines = [f"demod-voice {report['version']}  Python {report['python']}  {report['platform']}", ""]
    width = max(len(c["name"]) for c in report["checks"])
    for c in report["checks"]:
        mark = "ok  " if c["ok"] else ("FAIL" if c["required"] else "--  ")
        lines.append(f"{mark} {c['name']:<{width}}  {c['detail']}")
    lines.append("")
    lines.append("healthy" if report["healthy"] else "unhealthy: a required capability is broken (FAIL above)")
    return "\n".join(lines)
