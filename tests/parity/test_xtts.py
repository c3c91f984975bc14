"""Our XTTS equals coqui-tts's ``Xtts.inference`` with greedy decoding (issue #32).

Both run on the same tiny random XTTS-v2 checkpoint in the genuine layout: ours decodes in its own batched
loop (``engines/xtts/batching.py``) and vocodes in ``engine.py``; coqui runs ``GPT.generate`` (transformers)
and its HiFi-GAN. Greedy: the same tokens, then the same waveform.
"""

from __future__ import annotations

import numpy as np
import pytest

TEXT = "The birch canoe slid on the smooth planks."


@pytest.fixture(scope="module")
def engine(parity_dir):
    pytest.importorskip("TTS.tts.models.xtts")
    from demod_voice.engines import xtts
    from demod_voice.tiny_models import build_xtts

    return xtts.load(build_xtts(parity_dir / "tiny-xtts", max_audio_tokens=24), "cpu", "fp32")


def test_greedy_tokens_and_waveform_equal_coquis_inference(engine, speech_wav):
    import torch

    from demod_voice.engines.xtts.batching import DecodeJob, Sampling

    latents = engine.conditioning([speech_wav], None)
    model = engine.model  # coqui's own Xtts object: the reference runs on the very same weights

    generated = []
    generate = model.gpt.generate

    def recording_generate(*args, **kwargs):  # calls coqui's generate unchanged; keeps its tokens to compare
        codes = generate(*args, **kwargs)
        generated.append(codes)
        return codes

    model.gpt.generate = recording_generate
    try:
        with torch.no_grad():
            theirs = model.inference(TEXT, "en", latents.gpt_cond_latent, latents.speaker_embedding,
                                     do_sample=False, num_beams=1)
    finally:
        del model.gpt.generate
    reference_tokens = generated[0][0].tolist()

    tokens = torch.IntTensor(model.tokenizer.encode(TEXT.lower(), lang="en")).unsqueeze(0)
    with torch.inference_mode():
        prompt = engine.scheduler.decoder.prompt(latents.gpt_cond_latent, tokens)
    job = engine.scheduler.submit(DecodeJob(prompt, Sampling(top_k=1), torch.Generator().manual_seed(0),
                                            engine.scheduler.decoder.max_tokens))
    our_tokens = [token for token, _ in job]
    assert our_tokens == reference_tokens
    assert len(our_tokens) >= 20

    chunks = list(engine.synthesize(TEXT, language="en", latents=latents, top_k=1, seed=0))
    ours = np.concatenate([c.samples for c in chunks])
    reference = np.asarray(theirs["wav"], dtype=np.float32).reshape(-1)
    assert ours.shape == reference.shape
    difference = float(np.abs(ours - reference).max())
    print(f"xtts greedy: {len(our_tokens)} tokens equal, waveform max |diff| {difference:.2e}, "
          f"peak {float(np.abs(reference).max()):.3f}")
    assert difference < 1e-5
