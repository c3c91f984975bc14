"""The real coqui-tts XTTS code paths, in process, on the tiny random-weight checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _finite_and_audible(chunks, sample_rate):
    assert chunks
    for chunk in chunks:
        assert chunk.sample_rate == sample_rate
        assert np.isfinite(chunk.samples).all()
    whole = np.concatenate([c.samples for c in chunks])
    assert np.abs(whole).max() > 1e-3
    return whole


def test_latents_cache_skips_conditioning(xtts_engine, speech_wav, second_speech_wav, tmp_path):
    engine = xtts_engine
    before = dict(engine.stats)
    first = engine.conditioning([speech_wav, second_speech_wav], tmp_path)
    assert first.source == "computed"
    assert engine.stats["latents_computed"] == before["latents_computed"] + 1
    cached = list((tmp_path / "xtts-latents").glob("*.safetensors"))
    assert len(cached) == 1 and cached[0].stem == first.key

    plan = engine.plan([speech_wav, second_speech_wav], tmp_path)
    assert plan.audio is None  # a hit does not even decode the references
    second = engine.conditioning(plan)
    assert second.source == "cache"
    assert engine.stats["latents_computed"] == before["latents_computed"] + 1
    assert engine.stats["latents_cached"] == before["latents_cached"] + 1
    assert np.array_equal(first.gpt_cond_latent.numpy(), second.gpt_cond_latent.numpy())

    # Another order is another key (the GPT conditions on the joined audio); another cache dir misses.
    assert engine.plan([second_speech_wav, speech_wav], tmp_path).key != first.key
    assert engine.plan([speech_wav, second_speech_wav], tmp_path / "elsewhere").cached() is None
    assert first.gpt_cond_latent.shape[-1] == engine.gpt_width
    assert tuple(first.speaker_embedding.shape) == (1, 512, 1)


def test_inference_is_seeded_and_split_by_sentence(xtts_engine, xtts_latents):
    engine = xtts_engine
    split = list(engine.synthesize("One. Two!", language="en", latents=xtts_latents, seed=7, temperature=0.7))
    assert len(split) == 2  # one chunk per sentence
    a = _finite_and_audible(split[:1], engine.sample_rate)
    # The same seed gives the same audio; split off, the text is one piece.
    again = list(engine.synthesize("One.", language="en", latents=xtts_latents, seed=7, temperature=0.7))
    assert np.array_equal(a, _finite_and_audible(again, engine.sample_rate))
    assert len(engine.sentences("One. Two!", "en", split_sentences=False)) == 1


def test_inference_stream_yields_several_chunks(xtts_engine, xtts_latents):
    engine = xtts_engine
    chunks = list(engine.synthesize("Streaming test.", language="en", latents=xtts_latents, stream=True,
                                    stream_chunk_size=4, seed=3))
    assert len(chunks) >= 2
    _finite_and_audible(chunks, engine.sample_rate)


def test_stream_vocodes_each_set_of_latents_once_with_coquis_chunks(xtts_engine, xtts_latents):
    """The final chunk reuses the last waveform; the chunks equal coqui's (which vocodes the same latents again)."""
    import torch

    engine = xtts_engine
    model = engine.model
    calls: list = []
    hook = model.hifigan_decoder.register_forward_hook(
        lambda module, args, out: calls.append((args[0].detach().clone(), out.detach().clone())))
    try:
        chunks = [c.samples for c in engine.synthesize("A somewhat longer sentence to speak.", language="en",
                                                       latents=xtts_latents, stream=True, stream_chunk_size=1,
                                                       seed=11)]
    finally:
        hook.remove()
    lengths = [latents.shape[1] for latents, _ in calls]
    assert len(lengths) >= 2 and lengths == sorted(set(lengths))  # every call brings new latents
    # coqui's inference_stream: one more vocoder call over the same latents, then the final chunk.
    with torch.inference_mode():
        final = model.hifigan_decoder(calls[-1][0], g=xtts_latents.speaker_embedding).squeeze()
    wavs = [out.squeeze() for _, out in calls] + [final]
    expected, prev, overlap = [], None, None
    for i, wav in enumerate(wavs):
        chunk, prev, overlap = model.handle_chunks(wav.clone(), prev, overlap, 1024, is_final=i == len(wavs) - 1)
        if len(chunk):
            expected.append(chunk.float().numpy())
    assert len(chunks) == len(expected)
    for ours, theirs in zip(chunks, expected):
        assert np.array_equal(ours, theirs)


def test_sped_up_stream_of_one_token_chunks_waits_for_a_frame(xtts_engine, xtts_latents):
    """speed 1.5 with one-token chunks: a lone latent stretches to zero frames; it waits instead of failing."""
    chunks = list(xtts_engine.synthesize("Streaming test.", language="en", latents=xtts_latents, stream=True,
                                         stream_chunk_size=1, seed=3, speed=1.5))
    _finite_and_audible(chunks, xtts_engine.sample_rate)
    assert len(chunks) >= 2


def test_engine_errors(xtts_engine, xtts_latents):
    from demod_voice.errors import InputError, UsageError

    latents = xtts_latents
    with pytest.raises(InputError, match="not supported"):
        list(xtts_engine.synthesize("Hi.", language="klingon", latents=latents))
    with pytest.raises(UsageError, match="unknown XTTS option"):
        list(xtts_engine.synthesize("Hi.", language="en", latents=latents, beams=3))
    with pytest.raises(InputError, match="too long for XTTS"):
        list(xtts_engine.synthesize("word " * 500, language="en", latents=latents, split_sentences=False))


def test_engine_is_loaded_once_per_process(xtts_engine, xtts_checkpoint):
    from demod_voice.engines import xtts

    assert xtts.load(xtts_checkpoint, "cpu", "fp32") is xtts_engine
    assert xtts_engine.name == "xtts" and xtts_engine.sample_rate == 24000 and "en" in xtts_engine.languages
    assert xtts_engine.model_id == xtts.model_identity(xtts_checkpoint)


def test_saved_latents_round_trip(xtts_engine, xtts_latents, tmp_path):
    """Conditioning saved with a voice profile keeps its tensors and model id (read without torch)."""
    from demod_voice.engines import xtts

    path = tmp_path / "latents" / "xtts.safetensors"
    xtts_latents.save(path, {"voice": "narrator"})
    assert xtts.latents_model_id(path) == xtts_engine.model_id
    again = xtts.XttsLatents.load(path, "saved voice narrator")
    assert again.source == "saved voice narrator" and again.model_id == xtts_engine.model_id
    assert np.array_equal(again.speaker_embedding.numpy(), xtts_latents.speaker_embedding.numpy())
    assert np.array_equal(again.gpt_cond_latent.numpy(), xtts_latents.gpt_cond_latent.numpy())
