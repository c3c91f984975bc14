"""Where engines run: the one place that turns ``device`` (config, ``--gpu``/``--cpu``) into a concrete device.

``device`` is ``auto`` (a GPU when one is usable), ``cpu`` or ``gpu`` (``cuda``/``cuda:N`` also accepted).
Torch engines (XTTS, RVC) ask ``torch_device``; ONNX Runtime (Piper) asks ``onnx_wants_cuda``; the
server's per-device queues ask ``queue_for``, which never imports torch. Each falls back to the CPU
with one log line when no GPU is usable.
"""

from __future__ import annotations

import functools
import importlib.util
import logging

_LOGGER = logging.getLogger(__name__)


def wants_gpu(device: str | None) -> bool:
    return (device or "auto") not in ("cpu",)


@functools.cache
def _torch_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


@functools.cache
def _onnx_cuda() -> bool:
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def torch_device(device: str | None) -> str:
    """``cpu``/``gpu``/``auto``/``cuda[:N]`` -> ``cpu`` or a CUDA device string for torch."""
    if not wants_gpu(device):
        return "cpu"
    if _torch_cuda():
        return device if device and device.startswith("cuda") else "cuda"
    if device != "auto":
        _LOGGER.warning("no CUDA GPU is usable; running on the CPU")
    return "cpu"


def onnx_wants_cuda(device: str | None) -> bool:
    """Whether ONNX Runtime should be asked for its CUDA provider."""
    return wants_gpu(device) and _onnx_cuda()


def queue_for(device: str | None, engine_uses_gpu: bool) -> str:
    """The name of the work queue a request belongs to: ``cpu`` or ``cuda:N`` (no heavy import)."""
    if not engine_uses_gpu or not wants_gpu(device):
        return "cpu"
    return device if device and device.startswith("cuda:") else "cuda:0"
