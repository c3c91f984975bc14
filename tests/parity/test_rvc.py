"""Our RVC equals ``rvc`` 0.3.5 (PyPI): its synthesizer classes and its loudness mix, ``change_rms`` (issue #32).

Both sides get the same random weights, saved as RVC WebUI exports a voice (fp16, weight-normalised layers as
``weight_g``/``weight_v``, no ``enc_q.*``), and the same noise (one seed before each call: both draw the prior
noise, the sine source's random phase and its noise in the same order).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.parity.conftest import stubbed_modules

torch = pytest.importorskip("torch")
pytest.importorskip("rvc")
pytest.importorskip("librosa")

TOLERANCE = 1e-5


def _reference_class(version: str, f0: bool):
    from rvc.lib.infer_pack import models

    name = "SynthesizerTrnMs" + ("256" if version == "v1" else "768") + "NSFsid" + ("" if f0 else "_nono")
    return getattr(models, name)


def _inputs(version: str, frames: int = 120):
    rng = np.random.default_rng(3)
    dim = 256 if version == "v1" else 768
    phone = torch.from_numpy(rng.standard_normal((1, frames, dim)).astype(np.float32))
    f0 = 110.0 + 90.0 * np.sin(np.linspace(0, 6, frames)) ** 2
    f0[20:30] = 0.0  # an unvoiced stretch
    from demod_voice.engines.rvc import f0 as f0_mod

    pitch = torch.from_numpy(f0_mod.coarse(f0))[None]
    pitchf = torch.from_numpy(f0.astype(np.float32))[None]
    return phone, torch.tensor([frames]), pitch, pitchf


@pytest.mark.parametrize(("version", "f0", "rate"), [("v2", True, 40000), ("v1", True, 48000), ("v2", False, 32000)])
def test_synthesizer_equals_rvcs(parity_dir, version, f0, rate):
    from demod_voice.engines.rvc import checkpoint, synthesizer
    from demod_voice.tiny_models import build_rvc_voice

    path = build_rvc_voice(parity_dir / f"{version}-{int(f0)}-{rate}.pth", version, f0, rate, seed=11)
    voice = checkpoint.read_voice(path)
    ours = synthesizer.build(voice, "cpu")

    raw = torch.load(path, map_location="cpu", weights_only=True)  # as RVC loads it, minus the pickle
    theirs = _reference_class(version, f0)(*raw["config"], is_half=False)
    del theirs.enc_q  # as RVC's inference does
    result = theirs.load_state_dict({k: v.float() for k, v in raw["weight"].items()}, strict=False)
    assert not result.missing_keys and not result.unexpected_keys
    theirs.eval()

    phone, lengths, pitch, pitchf = _inputs(version)
    sid = torch.tensor([0])
    with torch.no_grad():
        torch.manual_seed(5)
        mine = ours.infer(phone, lengths, pitch, pitchf, sid)
        torch.manual_seed(5)
        args = (phone, lengths, pitch, pitchf, sid) if f0 else (phone, lengths, sid)
        reference = theirs.infer(*args)[0]
    assert mine.shape == reference.shape == (1, 1, 120 * ours.hop)
    difference = float((mine - reference).abs().max())
    print(f"rvc synthesizer {version} f0={f0} {rate}: max |diff| {difference:.2e}, peak {float(reference.abs().max()):.3f}")
    assert difference < TOLERANCE


def _change_rms():
    """RVC's ``change_rms``; its module imports praat-parselmouth at the top (GPL, not installed here): stubbed."""
    with stubbed_modules(parselmouth={}):
        from rvc.modules.vc.pipeline import change_rms
    return change_rms


@pytest.mark.parametrize("mix_rate", [0.0, 0.25, 0.8])
@pytest.mark.parametrize(("seconds", "out_rate"), [(2.37, 40000), (0.3, 48000), (5.0, 32000)])
def test_loudness_mix_equals_change_rms(mix_rate, seconds, out_rate):
    from demod_voice.engines.rvc import pipeline

    rng = np.random.default_rng(int(seconds * 100) + out_rate)
    n16 = int(seconds * 16000)
    envelope = 0.05 + np.abs(np.sin(np.linspace(0, 7, n16)))
    source = (envelope * rng.standard_normal(n16) * 0.2)  # float64, as RVC's high-passed input
    n_out = n16 // 160 * (out_rate // 100)
    converted = (rng.standard_normal(n_out) * 0.1 * np.linspace(1.5, 0.2, n_out)).astype(np.float32)
    converted[: n_out // 10] = 0.0  # silence at the start: the 1e-6 floor matters

    reference = _change_rms()(source, 16000, converted.copy(), out_rate, mix_rate)
    ours = pipeline.mix_rms(source, converted, out_rate, mix_rate)
    assert ours.shape == reference.shape
    difference = float(np.abs(ours - reference).max())
    print(f"rvc rms mix {seconds}s {out_rate} rate {mix_rate}: max |diff| {difference:.2e}")
    assert difference < 1e-6


def test_short_inputs_are_reflect_padded_as_rvc():
    """RVC pads each side with ``np.pad(mode="reflect")`` (repeated reflection when the input is shorter)."""
    from demod_voice.audio import Audio
    from demod_voice.engines.rvc import pipeline

    class _NoSynth:
        f0, sample_rate, hop = False, 40000, 400

    pipe = pipeline.Pipeline(_NoSynth(), None, "v2", segmenting=pipeline.Segmenting.rvc(False))
    x = np.sin(np.linspace(0, 30, 4000)).astype(np.float32)  # 0.25 s, far shorter than the 1 s context
    x16, n, pad, padded, _ = pipe._prepare(Audio(x, 16000), pipeline.ConvertOptions(), None)
    assert pad == 16000 and n == 4000
    expected = np.pad(pipeline.high_pass(x), (16000, 16000), mode="reflect")
    assert np.array_equal(padded, expected)


def test_default_context_is_rvcs_for_the_precision():
    """RVC's ``Config.device_config``: fp32 x_pad 1, x_query 6, x_center 38, x_max 41; fp16 3, 10, 60, 65."""
    from demod_voice.engines.rvc.pipeline import Segmenting

    assert Segmenting.rvc(False) == Segmenting(pad=1.0, query=6.0, center=38.0, max_len=41.0) == Segmenting()
    assert Segmenting.rvc(True) == Segmenting(pad=3.0, query=10.0, center=60.0, max_len=65.0)
    assert Segmenting.rvc(True, 0.5).pad == 0.5
