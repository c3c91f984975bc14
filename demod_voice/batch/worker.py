"""What runs inside a worker (a local process or a Ray actor): engines stay loaded between jobs.

``Worker.run(job)`` never raises for a job's own failure: it returns an ``Outcome`` carrying either
the encoded output bytes or the error, so one bad job never takes the worker (and its loaded
models) down. Encoding happens here, in parallel; the driver only writes files.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field

from demod_voice import audio as audio_mod
from demod_voice.errors import DemodError
from demod_voice.synthesis import registry

_LOGGER = logging.getLogger(__name__)


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

    def _runner(self, engine: str):
        if engine not in self._runners:
            self._runners[engine] = registry.get(engine, self.cfg).Runner(self.cfg, self.device)
        return self._runners[engine]

    def run(self, job) -> Outcome:
        started = time.perf_counter()
        try:
            result = self._runner(job.engine).run(job)
            data = audio_mod.encode(result, job.fmt)
            captions = _render_captions(job, result)
        except DemodError as exc:
            return Outcome(job.line, False, seconds=time.perf_counter() - started, error=exc.to_dict())
        except Exception as exc:  # an engine bug: report it on this job with its type, keep the worker alive
            detail = traceback.format_exc() if self.verbose else None
            return Outcome(job.line, False, seconds=time.perf_counter() - started,
                           error={"error": type(exc).__name__, "message": f"unexpected {type(exc).__name__}: {exc}",
                                  "hint": "run with -v for the traceback and please report it", "traceback": detail})
        return Outcome(job.line, True, data=data, seconds=time.perf_counter() - started,
                       audio_seconds=result.duration, sample_rate=result.sample_rate, captions=captions)


def _render_captions(job, result) -> bytes:
    if getattr(job, "captions", None) is None:
        return b""
    from demod_voice import captions

    return captions.render(result.words or [], captions.caption_format(job.captions)).encode("utf-8")
