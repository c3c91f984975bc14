"""The tinygrad backend runs the real Joe voice and matches ONNX Runtime."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from demod_voice.errors import NotAvailableError

# Short sentences: every new input length means new kernels for tinygrad to compile.
TEXT = "Hi there. Good morning! Thank you."
DETERMINISTIC = dict(noise_scale=0.0, noise_w=0.0)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.slow
def test_tinygrad_matches_onnxruntime_sentence_by_sentence(tiny_engine, ort_engine):
    from demod_voice.engines.piper.engine import PiperOptions

    options = PiperOptions(**DETERMINISTIC)
    tiny = list(tiny_engine.synthesize(TEXT, options))
    ref = list(ort_engine.synthesize(TEXT, options))
    assert len(tiny) == len(ref) == 3  # one chunk per sentence: streaming works as with onnxruntime
    for got, want in zip(tiny, ref, strict=True):
        assert got.sample_rate == want.sample_rate == 22050
        assert len(got.samples) == len(want.samples) > 4000
        assert got.samples.dtype == np.float32
        assert _corr(got.samples, want.samples) >= 0.99
    assert tiny_engine.device == "CPU"


@pytest.mark.slow
def test_options_behave_as_with_onnxruntime(tiny_engine, ort_engine):
    """Volume and sentence silence go through the same piper-tts code (same sentence: kernels are cached)."""
    from demod_voice.engines.piper.engine import PiperOptions

    options = PiperOptions(volume=0.5, sentence_silence=0.1, **DETERMINISTIC)
    got = tiny_engine.synthesize_all("Hi there.", options)
    want = ort_engine.synthesize_all("Hi there.", options)
    assert len(got.samples) == len(want.samples)
    # silence goes between sentences only: one sentence has none after it, on either backend
    alone = ort_engine.synthesize_all("Hi there.", PiperOptions(volume=0.5, **DETERMINISTIC))
    assert len(got.samples) == len(alone.samples)
    assert _corr(got.samples, want.samples) >= 0.99
    assert abs(float(np.abs(got.samples).max()) - 0.5) < 1e-3  # normalised, then the volume applied


def test_config_key_selects_backend(cli, isolated_home, tmp_path, needs_tinygrad_cpu):
    """``piper.backend`` in the config reaches the engine (shown by a device tinygrad lacks)."""
    out = tmp_path / "x.wav"
    proc = cli("piper-infer", "en_US-joe-medium", "Hi.", "-o", out, "--gpu",
               env={"DEMOD_VOICE_PIPER__BACKEND": "tinygrad"})
    from demod_voice.engines.piper.tinygrad_backend import available_devices

    if any(d != "CPU" for d in available_devices()):
        pytest.skip("this machine has a tinygrad GPU device")
    assert proc.returncode == 2, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "tinygrad found no GPU device" in err and "--backend onnxruntime" in err
    assert not out.exists()


def test_unknown_device_is_named(needs_tinygrad_cpu):
    from demod_voice.engines.piper.tinygrad_backend import pick_device

    with pytest.raises(NotAvailableError) as info:
        pick_device("metal")
    assert "'metal'" in info.value.message and "CPU" in info.value.message
    assert "--backend onnxruntime" in info.value.hint
    assert pick_device("cpu") == "CPU"


def _field(number: int, payload: bytes | int) -> bytes:
    """One protobuf field: varint for ints, length-delimited for bytes."""
    def varint(n: int) -> bytes:
        out = b""
        while True:
            byte, n = n & 0x7F, n >> 7
            out += bytes([byte | (0x80 if n else 0)])
            if not n:
                return out
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _onnx_with_op(op_type: str) -> bytes:
    """A one-node ONNX model in the genuine protobuf format (no onnx package needed)."""
    dim = _field(1, _field(1, 4))                                  # dim_value 4
    tensor_type = _field(1, 1) + _field(2, dim)                    # float32, shape [4]
    value = lambda name: _field(1, name.encode()) + _field(2, _field(1, tensor_type))  # noqa: E731
    node = _field(1, b"x") + _field(2, b"y") + _field(4, op_type.encode())
    graph = _field(1, node) + _field(2, b"g") + _field(11, value("x")) + _field(12, value("y"))
    return _field(1, 8) + _field(7, graph) + _field(8, _field(1, b"") + _field(2, 15))


def test_unsupported_op_is_named(cli, isolated_home, tmp_path, joe_voice, needs_tinygrad_cpu):
    model = tmp_path / "odd.onnx"
    model.write_bytes(_onnx_with_op("MelWeightMatrixBogus"))
    shutil.copy(f"{joe_voice}.json", f"{model}.json")
    out = tmp_path / "odd.wav"
    proc = cli("piper-infer", model, "Hi.", "-o", out, "--backend", "tinygrad", "--cpu")
    assert proc.returncode == 2, proc.stderr.decode()
    err = proc.stderr.decode()
    assert err.startswith("error: ") and "MelWeightMatrixBogus" in err and "--backend onnxruntime" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_health_lists_tinygrad_devices(cli, needs_tinygrad_cpu):
    proc = cli("health", "--json")
    report = json.loads(proc.stdout)
    check = next(c for c in report["checks"] if c["name"] == "tinygrad-devices")
    assert check["ok"] and "CPU" in check["data"]["devices"]


def test_help_does_not_import_tinygrad():
    import subprocess
    import sys

    from tests.helpers import cli_env

    code = "import sys, runpy; sys.argv=['demod-voice','piper-infer','--help']\n" \
           "try: runpy.run_module('demod_voice', run_name='__main__')\nexcept SystemExit: pass\n" \
           "print('tinygrad' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=cli_env(), timeout=60)
    assert proc.stdout.decode().strip().endswith("False")
    assert b"--backend" in proc.stdout


def test_unknown_backend_is_refused(cli):
    proc = cli("piper-infer", "en_US-joe-medium", "Hi.", "--backend", "jax")
    assert proc.returncode == 2
    assert b"invalid choice: 'jax'" in proc.stderr


def test_broken_voice_file_is_an_input_error(cli, isolated_home, tmp_path, joe_voice, needs_tinygrad_cpu):
    model = tmp_path / "broken.onnx"
    model.write_bytes(joe_voice.read_bytes()[:5000])  # a truncated download
    shutil.copy(f"{joe_voice}.json", f"{model}.json")
    out = tmp_path / "broken.wav"
    proc = cli("piper-infer", model, "Hi.", "-o", out, "--backend", "tinygrad", "--cpu")
    assert proc.returncode == 2, proc.stderr.decode()
    err = proc.stderr.decode()
    assert "cannot load Piper voice" in err and "broken.onnx" in err and "--backend onnxruntime" in err
    assert not out.exists()
