"""The engine layer (demod_voice/adapters): options from the one schema, finite ranges, bounded Piper text."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from demod_voice import config
from demod_voice.errors import ConfigError, InputError
from demod_voice.synthesis import Request, RvcRequest

JOE = "en_US-joe-medium"


def cfg_with(tree: dict | None = None) -> config.Config:
    cfg = config.Config()
    if tree:
        cfg.apply(tree, "test")
    return cfg


def test_every_engine_parameter_has_a_finite_range():
    for key, setting in config.SETTINGS.items():
        if key.split(".")[0] in ("piper", "xtts", "rvc") and setting.type in ("int", "float"):
            assert setting.min is not None and setting.max is not None, key
            assert math.isfinite(setting.min) and math.isfinite(setting.max), key


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_in_config(tmp_path: Path, value):
    with pytest.raises(ConfigError, match="finite"):
        cfg_with({"piper": {"volume": value}})
    path = tmp_path / "c.yaml"
    path.write_text("piper:\n  noise_scale: .nan\n")
    with pytest.raises(ConfigError, match="piper.noise_scale"):
        config.validate_file(path)


@pytest.mark.parametrize("key,value", [("volume", "nan"), ("volume", 1e308), ("length_scale", -5),
                                       ("sentence_silence", 1e6), ("noise_scale", float("inf"))])
def test_request_options_are_checked_against_the_schema(key, value):
    with pytest.raises(InputError) as err:
        config.section_options("piper", config.PIPER_SYNTHESIS_KEYS, {key: value}, cfg_with())
    assert key in err.value.message and err.value.exit_code == 2


def test_request_options_override_config_and_unknown_ones_are_named():
    cfg = cfg_with({"xtts": {"temperature": 0.4}})
    values = config.section_options("xtts", config.XTTS_SAMPLING_KEYS, {"top_k": "7"}, cfg)
    assert values["temperature"] == 0.4 and values["top_k"] == 7
    with pytest.raises(InputError, match="bogus"):
        config.section_options("xtts", config.XTTS_SAMPLING_KEYS, {"bogus": 1}, cfg)


def test_rvc_options_share_the_schema_ranges():
    from demod_voice.engines.rvc import plugin as rvc

    cfg = cfg_with({"rvc": {"index_rate": 0.3}})
    assert rvc.options(RvcRequest("v", {"pitch": 3}), cfg).index_rate == 0.3
    with pytest.raises(InputError, match="pitch"):
        rvc.options(RvcRequest("v", {"pitch": 48}), cfg)  # batch used to accept +-48
    with pytest.raises(InputError, match="f0_method"):
        rvc.options(RvcRequest("v", {"f0_method": "nope"}), cfg)


def test_piper_options_are_validated_before_any_engine_loads(joe_voice):
    from demod_voice.engines.piper import plugin as piper

    cfg = cfg_with({"piper": {"length_scale": 1.2}})
    plan = piper.options(Request(text="x", voice=str(joe_voice), speed=2.0), cfg)
    # speed is a playback rate (the engine time-stretches); the length scale stays the configured one
    assert plan.options.length_scale == pytest.approx(1.2) and plan.options.tempo == pytest.approx(2.0)
    assert plan.backend == "onnxruntime"
    with pytest.raises(InputError, match="single speaker"):
        piper.options(Request(text="x", voice=str(joe_voice), speaker="3"), cfg)
    with pytest.raises(InputError, match="backend"):
        piper.options(Request(text="x", voice=str(joe_voice), backend="cuda-magic"), cfg)


def test_piper_text_is_split_into_bounded_pieces():
    from demod_voice.engines.piper.plugin import MAX_SPOKEN_CHARS
    from demod_voice.text import split_sentences, spoken_length

    unpunctuated = " ".join(["word"] * 2000)
    pieces = split_sentences(unpunctuated, max_chars=MAX_SPOKEN_CHARS, measure=spoken_length)
    assert max(map(len, pieces)) <= MAX_SPOKEN_CHARS
    assert " ".join(pieces) == unpunctuated
    # espeak would not end a sentence at ". " before a lowercase letter; the splitter does
    assert split_sentences("One thing. another thing.") == ["One thing.", "another thing."]


def test_ordinary_long_sentences_stay_whole_and_numbers_count_as_spoken():
    """Only run-on text is split: a 163-character sentence is one Piper run, as raw Piper speaks it, while
    digits count as the words they become (248 number-heavy characters were 44 s of speech, 1.46 GB)."""
    from demod_voice.engines.piper.plugin import MAX_SPOKEN_CHARS
    from demod_voice.text import split_sentences, spoken_length

    sentence = ("Paragraph 1: the old lighthouse keeper wrote in his journal every evening, noting the weather, "
                "the ships that passed, and the birds that rested on the rocks below.")
    assert len(sentence) == 163
    assert split_sentences(sentence + " " + sentence, MAX_SPOKEN_CHARS, spoken_length) == [sentence, sentence]
    numbers = "in 1987 there were 23456 ships and 98765 birds on 4321 rocks with 7654321 waves " * 3
    pieces = split_sentences(numbers, MAX_SPOKEN_CHARS, spoken_length)
    assert len(numbers) < MAX_SPOKEN_CHARS and len(pieces) >= 2
    assert all(spoken_length(p) <= MAX_SPOKEN_CHARS for p in pieces)
    assert " ".join(pieces) == numbers.strip()
    assert len(split_sentences("x" * 700, 300)[0]) == 300  # a word longer than the bound is cut at the bound


def test_long_unpunctuated_piper_text_streams_in_many_chunks(joe_voice):
    """A long text without punctuation gives many chunks of bounded length, not one huge inference."""
    from demod_voice.engines.piper import plugin as piper

    cfg = cfg_with({"piper": {"noise_scale": 0.0, "noise_w": 0.0}})
    text = " ".join(["testing"] * 120)  # ~960 characters, one 'sentence'
    chunks = list(piper.synthesize(Request(text=text, voice=str(joe_voice)), cfg, "cpu"))
    assert len(chunks) >= 3
    longest = max(c.duration for c in chunks)
    assert longest < 40.0
    assert all(np.isfinite(c.samples).all() for c in chunks)


def test_overlapping_piper_runs_give_the_same_audio_as_a_run_alone(joe_voice):
    """A run's samples do not depend on what else runs: overlapping runs give a run alone's samples, bit for bit.

    The first two texts are ones whose samples change with ONNX Runtime's thread count (measured: 1 vs 2
    threads differ by up to 7e-6), so any scheme that picks threads by load fails here, as one did on CI.
    """
    import threading

    from demod_voice.engines.piper import engine as piper

    engine = piper.load(joe_voice, "cpu")
    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)
    texts = ["Three words here.", "Four words right here.", "The quick brown fox jumps over the lazy dog."]

    def speak(text: str) -> np.ndarray:
        return np.concatenate([c.samples for c in engine.synthesize(text, options)])

    alone = [speak(t) for t in texts]
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(6)

    def worker(i: int) -> None:
        start.wait()
        results[i] = speak(texts[i % len(texts)])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(results) == 6
    for i, samples in results.items():
        assert np.array_equal(samples, alone[i % len(texts)]), f"run {i} differs from the same text alone"


# Texts whose samples differ between 1 and 2 ONNX Runtime threads (docs/benchmarks.md): a scheme that changed
# how the work is split would show here.
THREAD_SENSITIVE = ["Three words here.", "Four words right here.", "The quick brown fox jumps over the lazy dog."]


def test_spinning_and_quiet_sessions_give_the_same_audio(joe_voice):
    """``piper.onnx_spinning`` on and off: spinning changes how threads wait, not the sums: same bits."""
    from demod_voice.engines.piper import engine as piper

    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)
    spinning, quiet = piper.load(joe_voice, "cpu", spinning="on"), piper.load(joe_voice, "cpu", spinning="off")
    assert spinning is not quiet
    for text in THREAD_SENSITIVE:
        a = np.concatenate([c.samples for c in spinning.synthesize(text, options)])
        b = np.concatenate([c.samples for c in quiet.synthesize(text, options)])
        assert np.array_equal(a, b), text
    assert spinning._voice.session.stats["spinning"] >= 3 and spinning._voice.session.stats["quiet"] == 0
    assert quiet._voice.session.stats["quiet"] >= 3 and quiet._voice.session.stats["spinning"] == 0


def test_auto_spinning_runs_overlapping_runs_quietly_with_the_same_audio(joe_voice):
    """``auto``: a lone run spins, runs that overlap use the quiet session (built at the first overlap)."""
    import threading
    import time

    from demod_voice.engines.piper import engine as piper

    engine = piper.load(joe_voice, "cpu", spinning="auto")
    session = engine._voice.session
    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)

    def speak(text: str) -> np.ndarray:
        return np.concatenate([c.samples for c in engine.synthesize(text, options)])

    alone = [speak(t) for t in THREAD_SENSITIVE]
    assert session.stats["spinning"] >= 3

    def overlapping() -> dict:
        results: dict[int, np.ndarray] = {}
        start = threading.Barrier(4)

        def worker(i: int) -> None:
            start.wait()
            results[i] = speak(THREAD_SENSITIVE[i % 3])

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        return results

    for _ in range(3):  # the quiet session is built in the background at the first overlap
        results = overlapping()
        assert len(results) == 4
        for i, samples in results.items():
            assert np.array_equal(samples, alone[i % 3]), f"run {i} differs from the same text alone"
        deadline = time.monotonic() + 120
        while session._quiet is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if session.stats["quiet"]:
            break
    assert session.stats["quiet"] > 0


def test_only_big_runs_hand_the_arena_back_and_the_audio_does_not_change(joe_voice):
    """Runs over ``piper.arena_release_ids`` phoneme ids (times length_scale) shrink the arena; the rest keep it.

    Shrinking only frees memory no tensor uses, so the samples are the same either way.
    """
    from demod_voice.engines.piper import engine as piper

    engine = piper.load(joe_voice, "cpu", release_ids=400)
    session = engine._voice.session
    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)
    short = "The quick brown fox jumps over the lazy dog."  # 109 ids
    long = ("Paragraph 1: the old lighthouse keeper wrote in his journal every evening, noting the weather, "
            "the ships that passed, and the birds that rested on the rocks below.")  # 339 ids
    released = session.stats["released"]
    kept = np.concatenate([c.samples for c in engine.synthesize(long, options)])
    assert session.stats["released"] == released
    slow = piper.PiperOptions(noise_scale=0.0, noise_w=0.0, length_scale=1.5)  # 339 x 1.5 ids of audio
    list(engine.synthesize(long, slow))
    assert session.stats["released"] == released + 1
    try:
        piper.load(joe_voice, "cpu", release_ids=0)  # every run gives memory back
        assert np.array_equal(np.concatenate([c.samples for c in engine.synthesize(long, options)]), kept)
        list(engine.synthesize(short, options))
        assert session.stats["released"] == released + 3
    finally:
        piper.load(joe_voice, "cpu", release_ids=piper.DEFAULT_RELEASE_IDS)


def test_chain_converts_each_sentence_once():
    from demod_voice.audio import Audio
    from demod_voice.synthesis.chain import converted

    seen = []

    def convert(chunk):
        seen.append(len(chunk.samples))
        return Audio(chunk.samples * 0.5, chunk.sample_rate)

    chunks = [Audio(np.ones(n, dtype=np.float32), 16000) for n in (10, 20, 30)]
    out = list(converted(iter(chunks), convert))
    assert seen == [10, 20, 30] and [len(c.samples) for c in out] == [10, 20, 30]


def test_one_device_resolver_without_gpu():
    from demod_voice import devices

    assert devices.torch_device("cpu") == "cpu"
    assert devices.queue_for("cpu", engine_uses_gpu=True) == "cpu"
    assert devices.queue_for("gpu", engine_uses_gpu=False) == "cpu"
    assert devices.queue_for("cuda:1", engine_uses_gpu=True) == "cuda:1"


def test_file_identity_changes_when_the_file_is_replaced(tmp_path: Path):
    from demod_voice.paths import file_identity

    path = tmp_path / "f.bin"
    path.write_bytes(b"a")
    first = file_identity(path)
    path.write_bytes(b"bb")
    assert file_identity(path) != first
    assert file_identity(tmp_path / "missing").endswith(":missing")
