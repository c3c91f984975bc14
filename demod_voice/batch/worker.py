"""What runs inside a worker (a local process or a Ray actor): engines stay loaded between jobs.

``Worker.run(job)`` never raises for a job's own failure: it returns an ``Outcome`` carrying either
the encoded output bytes or the error, so one bad job never takes the worker (and its loaded
models) down. Encoding happens here, in parallel; the driver only writes files.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import traceback
from dataclasses import dataclass, field

from demod_voice import audio as audio_mod
from demod_voice.cache import AudioCache
from demod_voice.errors import DemodError
from demod_voice.synthesis import keys, registry
from demod_voice.synthesis.jobs import TtsRunner

_LOGGER = logging.getLogger(__name__)
_UNSET = object()


@dataclass
class Outcome:
    """The result of one job, small enough to send back over a pipe or Ray."""

    line: int
    ok: bool
    data: bytes = b""
    seconds: float = 0.0
    audio_seconds: float = 0.0
    sample_rate: int = 0
    error: dict = field(default_factory=dict)
    captions: bytes = b""
    """The job's caption file, rendered (when the job has a ``captions`` path)."""


class Worker:
    """One adapter runner per engine kind, created on first use and kept."""

    def __init__(self, cfg, device: str, verbose: bool = False):
        self.cfg = cfg
        self.device = device
        self.verbose = verbose
        self._runners: dict[str, object] = {}
        self._cache = _UNSET

    def _runner(self, engine: str):
        if engine not in self._runners:
            self._runners[engine] = registry.get(engine, self.cfg).Runner(self.cfg, self.device)
        return self._runners[engine]

    def _audio_cache(self):
        """The configured audio cache (``cache.enabled``), opened once; None when off or not openable."""
        if self._cache is _UNSET:
            try:
                self._cache = AudioCache.from_config(self.cfg)
            except (OSError, sqlite3.Error) as exc:
                _LOGGER.warning("audio cache: cannot open it (%s); the batch runs uncached", exc)
                self._cache = None
        return self._cache

    def _speak(self, job) -> tuple[bytes, float, int, bytes]:
        """(encoded bytes, seconds of audio, sample rate, captions): from the audio cache under the one key
        the CLI and the server use too (``synthesis.keys``), else synthesised and stored there."""
        runner = self._runner(job.engine)
        cache = self._audio_cache() if isinstance(runner, TtsRunner) and job.captions is None else None
        if cache is None:  # captions need the words, which an entry does not keep
            result = runner.run(job)
            return audio_mod.encode(result, job.fmt), result.duration, result.sample_rate, _render_captions(job, result)
        request = runner.request(job)
        plan = runner.plan(job, request)
        key = keys.audio_key(job.engine, request, self.cfg, fmt=job.fmt, plan=plan)
        try:
            entry = cache.get(key)
        except (OSError, sqlite3.Error) as exc:
            _LOGGER.warning("audio cache: cannot read it (%s)", exc)
            entry = None
        if entry is not None and "duration" in entry.meta and "sample_rate" in entry.meta:
            return entry.data, float(entry.meta["duration"]), int(entry.meta["sample_rate"]), b""
        result = runner.run(job, request, plan)
        data = audio_mod.encode(result, job.fmt)
        try:
            cache.put(key, data, keys.entry_meta(job.engine, job.fmt, result.sample_rate, result.duration),
                      tag=keys.tag_for(job.engine, plan))
        except (OSError, sqlite3.Error) as exc:
            _LOGGER.warning("audio cache: cannot store an answer (%s)", exc)
        return data, result.duration, result.sample_rate, b""

    def run(self, job) -> Outcome:
        started = time.perf_counter()
        try:
            data, duration, sample_rate, captions = self._speak(job)
        except DemodError as exc:
            return Outcome(job.line, False, seconds=time.perf_counter() - started, error=exc.to_dict())
        except Exception as exc:  # an engine bug: report it on this job with its type, keep the worker alive
            detail = traceback.format_exc() if self.verbose else None
            return Outcome(job.line, False, seconds=time.perf_counter() - started,
                           error={"error": type(exc).__name__, "message": f"unexpected {type(exc).__name__}: {exc}",
                                  "hint": "run with -v for the traceback and please report it", "traceback": detail})
        return Outcome(job.line, True, data=data, seconds=time.perf_counter() - started,
                       audio_seconds=duration, sample_rate=sample_rate, captions=captions)


def _render_captions(job, result) -> bytes:
    if getattr(job, "captions", None) is None:
        return b""
    from demod_voice import captions

    return captions.render(result.words or [], captions.caption_format(job.captions)).encode("utf-8")
