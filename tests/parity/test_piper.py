"""Our in-process Piper equals ``piper.PiperVoice`` (piper-tts) bit for bit at noise 0 (issue #32).

Ours runs the same ONNX graph through its own session handling (shared CPU arena, spinning policy) and its
own sentence splitting; with the noise off, every sample must still be the reference's.
"""

from __future__ import annotations

import numpy as np

TEXT = ("The quick brown fox jumps over the lazy dog. Is it raining in Dublin today? "
        "Numbers like 42 and 1999 are spoken as words, aren't they!")


def test_in_process_piper_equals_piper_voice(joe_voice, isolated_home):
    from piper import PiperVoice, SynthesisConfig

    from demod_voice import config, synthesis
    from demod_voice.synthesis import Request

    reference = PiperVoice.load(str(joe_voice), config_path=str(joe_voice) + ".json")
    syn = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    theirs = [chunk.audio_float_array for chunk in reference.synthesize(TEXT, syn_config=syn)]

    cfg = config.load()
    request = Request(text=TEXT, voice=str(joe_voice), options={"noise_scale": 0.0, "noise_w": 0.0})
    ours = [chunk.samples for chunk in synthesis.synthesize("piper", request, cfg, "cpu")]

    assert len(ours) == len(theirs) == 3  # one chunk per sentence on both sides
    for mine, reference_chunk in zip(ours, theirs, strict=True):
        assert mine.dtype == reference_chunk.dtype == np.float32
        assert np.array_equal(mine, reference_chunk)
    assert max(float(np.abs(c).max()) for c in ours) > 0.05
