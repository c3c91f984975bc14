"""OpenAI speech-to-text: ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/translations``.

Multipart like OpenAI's: ``file``, ``model``, ``language``, ``prompt``,
``temperature``, ``response_format`` (json, text, srt, vtt, verbose_json) and
``timestamp_granularities[]`` (segment, word; verbose_json only). Our
additions: ``collect=true`` with ``voice=NAME`` adds the upload to the
caller's own saved voice (see ``demod_voice.stt``); the answer says what
happened (``collected`` in JSON bodies, the ``X-Collected`` header otherwise).
Same authentication and upload limits as the speech routes.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from demod_voice.errors import InputError
from demod_voice.server.languages import language_name
from demod_voice.server.routes import current_user, read_upload, service
from demod_voice.server.service import Service
from demod_voice.stt import Collected, STTRequest, decode

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")


def _clock(seconds: float, separator: str) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def subtitles(segments, fmt: str) -> str:
    """SRT or WebVTT cues, one per segment."""
    if fmt == "srt":
        cues = [f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n"
                for i, s in enumerate(segments, 1)]
        return "\n".join(cues)
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def verbose(result, granularities: list[str]) -> dict:
    # OpenAI names the language ("english"), where Whisper gives its code ("en")
    body = {"task": result.task, "language": language_name(result.language), "duration": result.duration,
            "text": result.text}
    if "segment" in granularities or not granularities:
        body["segments"] = [{"id": s.id, "seek": 0, "start": s.start, "end": s.end, "text": s.text,
                             "tokens": list(s.tokens), "temperature": s.temperature, "avg_logprob": s.avg_logprob,
                             "compression_ratio": s.compression_ratio, "no_speech_prob": s.no_speech_prob}
                            for s in result.segments]
    if "word" in granularities:
        body["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end}
                         for s in result.segments for w in s.words]
    return body


def render(result, fmt: str, granularities: list[str], collected: Collected | None) -> Response:
    headers = {"X-Collected": json.dumps(collected.to_dict(), separators=(",", ":"))} if collected else None
    if fmt in ("json", "verbose_json"):
        body = {"text": result.text} if fmt == "json" else verbose(result, granularities)
        if collected:
            body["collected"] = collected.to_dict()
        return JSONResponse(body, headers=headers)
    if fmt == "text":
        return PlainTextResponse(result.text + "\n", headers=headers)
    media = "application/x-subrip" if fmt == "srt" else "text/vtt"
    return Response(subtitles(result.segments, fmt), media_type=f"{media}; charset=utf-8", headers=headers)


router = APIRouter(tags=["openai"])


def _check_format(fmt: str, granularities: list[str]) -> list[str]:
    if fmt not in FORMATS:
        raise InputError(f"unknown response_format '{fmt}'", hint="use one of " + ", ".join(FORMATS))
    unknown = [g for g in granularities if g not in GRANULARITIES]
    if unknown:
        raise InputError(f"unknown timestamp_granularities {', '.join(unknown)}", hint="use segment and/or word")
    if granularities and fmt != "verbose_json":
        raise InputError("timestamp_granularities need response_format verbose_json")
    return granularities


async def _run(request: Request, svc: Service, file: UploadFile, user: str, *, task: str, model: str,
               language: str | None, prompt: str | None, temperature: float | None, fmt: str,
               granularities: list[str], collect: bool, voice: str | None) -> Response:
    granularities = _check_format(fmt, granularities)
    if temperature is not None and not 0.0 <= temperature <= 1.0:
        raise InputError(f"temperature {temperature} is out of range", hint="use 0-1")
    if collect and not voice:
        raise InputError("collect=true needs voice=NAME (one of your saved voices)")
    if collect:
        svc.store(user).get(voice)  # 404 before any work when it is not the caller's voice
    data = await read_upload(request, file)
    audio = decode(data, f"upload {file.filename!r}", svc.cfg.get("stt.max_audio_s"))
    req = STTRequest(audio=audio, model=model, language=language or None, prompt=prompt or None,
                     temperature=temperature, task=task, words="word" in granularities, user=user,
                     collect_voice=voice if collect else None, filename=file.filename or "")
    result, collected = await svc.stt.run_async(req)
    return render(result, fmt, granularities, collected)


@router.post("/v1/audio/transcriptions")
async def transcriptions(request: Request, file: UploadFile = File(...), model: str = Form("whisper-1"),
                         language: str | None = Form(None), prompt: str | None = Form(None),
                         temperature: float | None = Form(None), response_format: str = Form("json"),
                         timestamp_granularities: list[str] = Form([], alias="timestamp_granularities[]"),
                         stream: bool = Form(False), collect: bool = Form(False), voice: str | None = Form(None),
                         user: str = Depends(current_user), svc: Service = Depends(service)):
    if stream:
        raise InputError("stream=true is not supported for transcriptions", hint="leave stream unset")
    return await _run(request, svc, file, user, task="transcribe", model=model, language=language, prompt=prompt,
                      temperature=temperature, fmt=response_format, granularities=timestamp_granularities,
                      collect=collect, voice=voice)


@router.post("/v1/audio/translations")
async def translations(request: Request, file: UploadFile = File(...), model: str = Form("whisper-1"),
                       prompt: str | None = Form(None), temperature: float | None = Form(None),
                       response_format: str = Form("json"), user: str = Depends(current_user),
                       svc: Service = Depends(service)):
    return await _run(request, svc, file, user, task="translate", model=model, language=None, prompt=prompt,
                      temperature=temperature, fmt=response_format, granularities=[], collect=False, voice=None)
