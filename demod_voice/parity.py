"""Which engines passed parity against their reference implementation in this version (``tests/parity``).

The record lists, per engine, the reference it is compared with and the names of its parity tests;
``tests/parity/test_record.py`` fails when it differs from the tests that exist, and when docs/engines.md does
not carry :func:`line`. ``health --deep`` prints it. Plain data: importing it imports nothing heavy.
"""

from __future__ import annotations

#: engine -> (reference implementation, parity tests in tests/parity/test_<engine>*.py, without "test_")
RECORD: dict[str, tuple[str, tuple[str, ...]]] = {
    "piper": ("piper-tts 1.8 PiperVoice", (
        "in_process_piper_equals_piper_voice",)),
    "rvc": ("rvc 0.3.5", (
        "default_context_is_rvcs_for_the_precision",
        "loudness_mix_equals_change_rms",
        "short_inputs_are_reflect_padded_as_rvc",
        "synthesizer_equals_rvcs",)),
    "styletts2": ("styletts2 0.1.6", (
        "log_mel_equals_the_training_mel",
        "long_text_is_spoken_sentence_by_sentence_within_plberts_window",
        "one_diffusion_step_is_defined_where_the_reference_gives_nan",
        "stages_equal_the_reference",)),
    "xtts": ("coqui-tts 0.28 Xtts.inference", (
        "greedy_tokens_and_waveform_equal_coquis_inference",)),
}


def line() -> str:
    """One line: each engine, its reference and the stages its tests compare."""
    parts = [f"{engine} = {reference} ({', '.join(tests)})" for engine, (reference, tests) in sorted(RECORD.items())]
    return "Parity with reference implementations, tested in this version: " + "; ".join(parts) + "."
