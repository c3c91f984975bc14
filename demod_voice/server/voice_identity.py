"""A request that names a saved voice is answered in that voice, or fails saying what is missing.

Falling back to another *engine* is the router's ordinary business; falling back to another *speaker* (Piper's
default voice for a cloned voice whose engine cannot run) is a different answer, given only when the request
(``allow_other_voice``) or the config (``router.allow_other_voice``) asks for it, and then said: the candidate
carries the voice it speaks in, which the front ends report in ``X-Voice``, ``X-Fallback`` and the CLI notice.
"""

from __future__ import annotations

from demod_voice.errors import EXIT_USAGE, HTTPProblem

#: The skip reason of an engine that would have spoken in another voice.
OTHER_VOICE = "other voice"


class VoiceUnavailable(HTTPProblem):
    """The voice asked for cannot be spoken now, and no other speaker was allowed (400; exit 2)."""

    exit_code = EXIT_USAGE


def _speaker(router, engine: str, voice) -> str:
    """The voice ``engine`` would speak in for ``voice``: a catalog engine's voice file name, else the engine."""
    provider = router.providers.get(engine)
    model_for = getattr(provider, "model_for", None)
    if model_for is not None:
        try:
            return model_for(voice).name.removesuffix(".onnx")
        except Exception:  # noqa: BLE001 - only a label: the engine reports its own failures when it runs
            pass
    return f"{engine}'s default voice"


def keep_identity(router, req, voice, candidates: list, skipped: list) -> list:
    """The candidates allowed to answer; an engine that would speak in another voice is skipped (and
    recorded in ``skipped``) unless other voices are allowed, in which case it is marked with its speaker."""
    if voice.profile is None:  # a catalog voice is the engine's own: nothing else can speak it
        return candidates
    own = voice.profile.engine
    allowed = req.allow_other_voice
    if allowed is None:
        allowed = bool(router.cfg.get("router.allow_other_voice"))
    kept = []
    for candidate in candidates:
        if candidate.engine == own:
            kept.append(candidate)
            continue
        speaker = _speaker(router, candidate.engine, voice)
        if allowed:
            candidate.speaker = speaker
            kept.append(candidate)
        else:
            skipped.append((candidate.engine, OTHER_VOICE, f"would speak in {speaker}, not in voice '{voice.name}'"))
    return kept


def voice_unavailable(voice, skipped: list) -> VoiceUnavailable:
    """The error when only other speakers could have answered: what the voice's own engine lacks."""
    own = voice.profile.engine if voice.profile else voice.engine
    missing = [f"{name}: {reason} ({detail})" for name, reason, detail in skipped if reason != OTHER_VOICE]
    why = "; ".join(missing) or f"engine {own} cannot run"
    return VoiceUnavailable(400, f"voice '{voice.name}' cannot be spoken now: {why}",
                            hint="fix what is missing ('demod-voice health' lists it), or allow another speaker "
                                 "(allow_other_voice: true in the request, --allow-other-voice, or "
                                 "router.allow_other_voice)",
                            param="voice", code="voice_unavailable")


def identity_headers(plan, engine: str, headers: dict) -> dict:
    """``X-Voice``/``X-Fallback`` for an answer in another speaker's voice (empty when the voice is kept)."""
    used = next((c for c in plan.candidates if c.engine == engine), None)
    if used is None or not used.speaker:
        return {}
    note = f"voice: '{plan.voice.name}' spoken as {used.speaker}"
    return {"X-Voice": used.speaker, "X-Fallback": ", ".join(filter(None, [headers.get("X-Fallback", ""), note]))}
