"""Piper voices through tinygrad (experimental backend).

The same ``.onnx`` voice runs on tinygrad's ONNX front end
(``tinygrad.nn.onnx.OnnxRunner``) instead of ONNX Runtime, on whatever
device tinygrad can open (CUDA/NV, AMD, Metal, OpenCL, CPU via clang).
Phonemization, sentence splitting, volume and normalisation stay piper-tts's
own: ``TinygradSession`` stands in for the ONNX Runtime session inside a
``PiperVoice``, so every option behaves exactly as with the default backend.

Three things make the front end usable for Piper's VITS graph:

* ops tinygrad 0.14 lacks or handles badly are replaced (``RandomNormalLike``
  is missing; its ``ScatterND`` loops over ``setitem`` and fails here);
* shape arithmetic (``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape`` ...)
  is evaluated with numpy on the host instead of as hundreds of tiny device
  kernels that each had to be scheduled and read back;
* wherever the graph needs a value on the host (``NonZero``, lengths from
  the duration predictor) every live intermediate tensor is realised in one
  batch first, so no part of the graph is scheduled or computed twice.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from demod_voice.engines.piper.engine import PiperEngine
from demod_voice.errors import EngineError, InputError, NotAvailableError, missing_extra

_LOGGER = logging.getLogger(__name__)

#: demod-voice device names -> what tinygrad should open ("" = tinygrad's own choice).
_GPU_DEVICES = ("CUDA", "NV", "AMD", "METAL", "CL", "QCOM", "WEBGPU")
_FALLBACK_HINT = "use --backend onnxruntime (or set piper.backend: onnxruntime)"


def _import_tinygrad():
    try:
        import tinygrad  # noqa: F401
    except ImportError:
        raise missing_extra("tinygrad", "tinygrad") from None
    return tinygrad


def available_devices() -> list[str]:
    """tinygrad devices that open on this machine, in tinygrad's preference order."""
    _import_tinygrad()
    from tinygrad.device import ALL_DEVICES, Device

    found = []
    for name in ALL_DEVICES:
        try:
            found.append(Device[name].device)
        except Exception:  # noqa: BLE001 -- each runtime fails in its own way when absent
            continue
    return found


def pick_device(device: str) -> str:
    """The tinygrad device for a demod-voice ``--device`` (cpu, gpu, auto) or a tinygrad name."""
    devices = available_devices()
    if not devices:
        raise NotAvailableError("tinygrad found no usable device (its CPU device needs the 'clang' compiler)",
                                hint=f"install clang (apt-get install clang) or {_FALLBACK_HINT}")
    wanted = device.upper()
    if wanted == "AUTO":  # tinygrad's own choice, which honours its DEV variable
        from tinygrad.device import Device

        return Device.canonicalize(None)
    if wanted == "GPU":
        gpus = [d for d in devices if d.split(":")[0] in _GPU_DEVICES]
        if not gpus:
            raise NotAvailableError(f"tinygrad found no GPU device (available: {', '.join(devices)})",
                                    hint=f"use --cpu, or {_FALLBACK_HINT}")
        return gpus[0]
    if wanted in devices or wanted.split(":")[0] in devices:
        return wanted
    raise NotAvailableError(f"tinygrad device '{device}' is not available here (available: {', '.join(devices)})",
                            hint=f"pick one of those, or {_FALLBACK_HINT}")


# ----------------------------------------------------------------------------------------------
# Host (numpy) evaluation of the graph's shape arithmetic.

_ONNX_TO_NUMPY = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
                  9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


def _ints(value) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _slice(data, starts, ends, axes=None, steps=None):
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        dim = data.shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            index[axis] = slice(start, end, step)
        else:
            start, end = min(max(start, -1), dim - 1), min(max(end, -1), dim - 1)
            index[axis] = slice(start, None if end == -1 else end, step)
    return data[tuple(index)]


def _reshape(data, shape, allowzero=0):
    shape = _ints(shape)
    if not allowzero:
        shape = [data.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return data.reshape(shape)


def _unsqueeze(data, axes):
    axes = sorted(a + data.ndim + len(_ints(axes)) if a < 0 else a for a in _ints(axes))
    for axis in axes:
        data = np.expand_dims(data, axis)
    return data


def _squeeze(data, axes=None):
    return np.squeeze(data) if axes is None else np.squeeze(data, axis=tuple(_ints(axes)))


def _div(a, b):
    if np.issubdtype(a.dtype, np.integer):
        return np.trunc(a / b).astype(a.dtype)
    return (a / b).astype(a.dtype)


def _constant_of_shape(shape, value=None):
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return np.full(_ints(shape), fill[0], dtype=fill.dtype)


def _constant(value=None, value_float=None, value_floats=None, value_int=None, value_ints=None, **_):
    if value is not None:
        return np.asarray(value)
    if value_float is not None:
        return np.array(value_float, np.float32)
    if value_floats is not None:
        return np.array(value_floats, np.float32)
    if value_int is not None:
        return np.array(value_int, np.int64)
    return np.array(value_ints, np.int64)


_HOST_OPS: dict[str, Callable[..., Any]] = {
    "Identity": lambda x: x,
    "Constant": _constant,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Concat": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "Gather": lambda x, i, axis=0: np.take(x, np.where(i < 0, i + x.shape[axis], i), axis=axis),
    "Slice": _slice,
    "Expand": lambda x, shape: np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(_ints(shape)))).copy(),
    "ConstantOfShape": _constant_of_shape,
    "Range": lambda start, limit, delta: np.arange(start, limit, delta, dtype=np.asarray(start).dtype),
    "Transpose": lambda x, perm=None: np.transpose(x, perm),
    "Cast": lambda x, to, **_: x.astype(_ONNX_TO_NUMPY[to]),
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Div": _div,
    "Neg": lambda x: -x,
    "Equal": lambda a, b: a == b,
    "Less": lambda a, b: a < b,
    "Greater": lambda a, b: a > b,
    "LessOrEqual": lambda a, b: a <= b,
    "GreaterOrEqual": lambda a, b: a >= b,
    "Not": np.logical_not,
    "And": np.logical_and,
    "Where": lambda c, a, b: np.where(c, a, b),
}


# ----------------------------------------------------------------------------------------------
# Ops the tinygrad front end lacks or cannot run on this graph.

def _scatter_nd(x, indices, updates, reduction: str = "none"):
    """ScatterND without setitem: every update row finds its target row by comparison."""
    from tinygrad import Tensor, dtypes

    k = int(indices.shape[-1])
    lead, rest = [int(s) for s in x.shape[:k]], [int(s) for s in x.shape[k:]]
    rows, width = math.prod(lead), math.prod(rest)
    count = math.prod(int(s) for s in indices.shape[:-1])
    if count == 0:
        return x
    idx = indices.reshape(count, k).cast(dtypes.int32)
    linear = None
    for axis in range(k):
        column = idx[:, axis]
        column = (column < 0).where(column + lead[axis], column) * math.prod(lead[axis + 1:])
        linear = column if linear is None else linear + column
    hit = linear.reshape(count, 1, 1) == Tensor.arange(rows).to(x.device).reshape(1, rows, 1)
    values = updates.reshape(count, 1, width).cast(x.dtype)
    flat = x.reshape(rows, width)
    if reduction == "none":
        out = hit.any(0).where(hit.where(values, 0).sum(0), flat)
    elif reduction == "add":
        out = flat + hit.where(values, 0).sum(0)
    elif reduction == "mul":
        out = flat * hit.where(values, 1).prod(0)
    else:
        raise NotImplementedError(f"ScatterND reduction '{reduction}'")
    return out.reshape(x.shape)


def _random_normal_like(x, dtype=None, mean: float = 0.0, scale: float = 1.0, seed=None):
    from tinygrad import Tensor

    return Tensor.randn(*x.shape).to(x.device) * scale + mean


_OVERRIDES = {"ScatterND": _scatter_nd, "RandomNormalLike": _random_normal_like}

#: Phoneme sequences are padded to a multiple of this (0 = no padding): fewer distinct shapes to compile.
PAD_TO = 32


class TinygradSession:
    """Runs a Piper ``.onnx`` graph with tinygrad; mimics the ONNX Runtime session API piper-tts calls."""

    def __init__(self, model_path: Path, device: str):
        _import_tinygrad()
        from tinygrad import Tensor
        from tinygrad.helpers import Context
        from tinygrad.nn.onnx import OnnxRunner, onnx_ops, required_input_python_consts

        self.device = device
        # Keep a DEV the user set for this device (e.g. DEV=CPU:LLVM picks a renderer); else pin the device.
        user_dev = os.environ.get("DEV", "")
        self._context = (Context if user_dev.split(":")[0].upper() == device.split(":")[0]
                         else lambda: Context(DEV=device))
        self._python_consts = required_input_python_consts
        self._lock = threading.Lock()
        with self._context():
            runner = OnnxRunner(model_path)
        self._ops = {**onnx_ops, **_OVERRIDES}
        unsupported = sorted({n.op for n in runner.graph_nodes if n.op not in self._ops and n.op not in _HOST_OPS})
        if unsupported:
            raise NotAvailableError(f"{model_path.name} uses ONNX ops the tinygrad backend cannot run: "
                                    f"{', '.join(unsupported)}", hint=_FALLBACK_HINT)
        self._runner = runner
        self._nodes = runner.graph_nodes
        self.input_names = list(runner.graph_inputs)
        self.output_names = list(runner.graph_outputs)
        # Node attributes on the host, for the numpy path.
        self._host_opts = [{k: (v.numpy() if isinstance(v, Tensor) else v) for k, v in n.opts.items()}
                           if n.op in _HOST_OPS else n.opts for n in self._nodes]
        # Initialisers: small ones (shape constants) on the host, the weights realised on the device once.
        with self._context():
            weights = {k: v.to(device) for k, v in runner.graph_values.items() if isinstance(v, Tensor)}
            Tensor.realize(*weights.values())
        self._static: dict[str, Any] = {"": None}
        for name, tensor in weights.items():
            self._static[name] = tensor.numpy() if tensor.numel() <= 64 else tensor
        # Where each value is needed last, so the run can drop it and knows what is still live.
        self._last_use: dict[str, int] = {}
        for index, node in enumerate(self._nodes):
            for name in node.inputs:
                self._last_use[name] = index
        for name in self.output_names:
            self._last_use[name] = len(self._nodes)

    def get_providers(self) -> list[str]:
        return [f"tinygrad:{self.device}"]

    def run(self, output_names, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the graph; returns the outputs as numpy arrays (like ``InferenceSession.run``)."""
        missing = [name for name in self.input_names if name not in feeds]
        if missing:
            raise InputError(f"the voice expects inputs {', '.join(missing)} that were not given")
        feeds = self._pad_phonemes(feeds)
        with self._lock, self._context():
            values = self._execute(feeds)
            wanted = output_names or self.output_names
            return [np.asarray(values[name].numpy() if not isinstance(values[name], np.ndarray) else values[name])
                    for name in wanted]

    def _pad_phonemes(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Pad phoneme ids to a multiple of ``PAD_TO`` so sentences share compiled kernels.

        The VITS graph masks everything past ``input_lengths`` and gives padded
        positions zero duration, so the audio does not change.
        """
        ids, lengths = feeds.get("input"), feeds.get("input_lengths")
        if ids is None or lengths is None or ids.ndim != 2 or not PAD_TO:
            return feeds
        width = -(-ids.shape[1] // PAD_TO) * PAD_TO
        if width == ids.shape[1]:
            return feeds
        padded = np.zeros((ids.shape[0], width), dtype=ids.dtype)
        padded[:, :ids.shape[1]] = ids
        return {**feeds, "input": padded}

    # --- the interpreter -------------------------------------------------------------------------

    def _execute(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        from tinygrad import Tensor

        values = dict(self._static)
        for name in self.input_names:
            values[name] = Tensor(np.ascontiguousarray(feeds[name]))
        for index, node in enumerate(self._nodes):
            inputs = [values[name] for name in node.inputs]
            if node.op == "Shape":
                shape = tuple(int(s) for s in inputs[0].shape)
                outputs: tuple = (np.array(shape[node.opts.get("start", 0):node.opts.get("end")], np.int64),)
            elif node.op in _HOST_OPS and all(v is None or isinstance(v, np.ndarray) for v in inputs):
                outputs = (np.asarray(_HOST_OPS[node.op](*inputs, **self._host_opts[index])),)
            else:
                outputs = self._device_op(index, node, inputs, values)
            values.update(zip(node.outputs, outputs[:len(node.outputs)], strict=True))
            for name in node.inputs:  # drop what no later node reads
                if self._last_use.get(name) == index and name not in self._static:
                    values.pop(name, None)
        return values

    def _device_op(self, index: int, node, inputs: list, values: dict) -> tuple:
        from tinygrad import Tensor

        as_const = self._python_consts.get(node.op, ())
        args = []
        for position, value in enumerate(inputs):
            if position in as_const and value is not None:
                if isinstance(value, Tensor):
                    self._realize_live(index, values)
                    value = value.tolist()
                else:
                    value = value.tolist()
            elif node.op == "Gather" and position == 1 and isinstance(value, np.ndarray):
                value = value.tolist()  # the front end's fast path for constant indices
            elif isinstance(value, np.ndarray):
                value = Tensor(np.ascontiguousarray(value))
            args.append(value)
        opts = dict(node.opts)
        if node.op == "Split" and "num_outputs" not in opts:
            opts["num_outputs"] = len(node.outputs)
        if node.op == "NonZero":  # reads its input back to the host
            self._realize_live(index, values)
        try:
            op = self._ops[node.op]
            if isinstance(op, dict):  # versioned implementations: pick by the graph's opset
                op = self._runner._select_op(node.op, node.opset_id)
            result = op(*args, **opts)
        except NotImplementedError as exc:
            raise EngineError(f"the tinygrad backend cannot run ONNX op {node.op} ({node.outputs[0]}): {exc}",
                              hint=_FALLBACK_HINT) from None
        return result if isinstance(result, tuple) else (result,)

    def _realize_live(self, index: int, values: dict) -> None:
        """Realise every pending tensor still needed, in one schedule, before reading one back."""
        from tinygrad import Tensor

        pending = [v for name, v in values.items()
                   if isinstance(v, Tensor) and self._last_use.get(name, -1) >= index and not v.uop.base.is_realized]
        if pending:
            Tensor.realize(*pending)


class TinygradPiperEngine(PiperEngine):
    """A Piper voice whose network runs on tinygrad; everything else is piper-tts as usual."""

    name = "piper"
    backend = "tinygrad"

    def __init__(self, model_path: Path, device: str = "cpu"):
        self._read_voice(model_path)
        from piper import PiperVoice
        from piper.config import PiperConfig

        tiny_device = pick_device(device)
        try:
            session = TinygradSession(model_path, tiny_device)
        except (NotAvailableError, InputError):
            raise
        except Exception as exc:  # the protobuf parser raises plain errors for broken files
            raise InputError(f"cannot load Piper voice {model_path} with tinygrad: {type(exc).__name__}: "
                             f"{str(exc).strip()[:300]}",
                             hint=f"the file may be truncated or not a Piper .onnx voice; or {_FALLBACK_HINT}") from None
        self._voice = PiperVoice(session=session,
                                 config=PiperConfig.from_dict(self.voice_config.raw))
        self.device = tiny_device
        _LOGGER.info("loaded Piper voice %s with tinygrad on %s", model_path.name, tiny_device)

    def synthesize(self, text, options=None, **kwargs):
        try:
            yield from super().synthesize(text, options, **kwargs)
        except EngineError as exc:
            if exc.hint is None:
                exc.hint = f"the tinygrad backend is experimental; {_FALLBACK_HINT}"
            raise
