"""What the engines' batch sections share: per-job options backed by the schema, the chained RVC column,
and the runner every TTS engine uses.

An engine's batch section (in its own module) defines ``JOB_OPTIONS``, ``job_request(job)``,
``validate_job(job, cfg) -> dict`` (cheap checks on the driver; what identifies the job's inputs on disk,
for the resume hash), ``group_key(job)`` (jobs with the same key share a loaded model) and ``Runner``.
Nothing here imports an engine, so validation never loads torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from demod_voice.audio import Audio
from demod_voice.errors import EngineError, NotAvailableError


@dataclass(frozen=True)
class Option:
    """A per-job option backed by one config schema key: its type, finite range and doc live there."""

    key: str

    @property
    def doc(self) -> str:
        from demod_voice.config import SETTINGS

        return SETTINGS[self.key].doc

    def parse(self, name: str, value: Any) -> Any:
        """Convert a CSV string or JSON value, with a message naming the option and its range."""
        from demod_voice.config import check_option

        return check_option(self.key, value, "job file")


def schema_options(section: str, keys: tuple[str, ...], **extra: str) -> dict[str, Option]:
    """``{name: Option("section.name")}`` for ``keys``, plus ``extra`` names mapped to other schema keys."""
    return {**{key: Option(f"{section}.{key}") for key in keys}, **{name: Option(key) for name, key in extra.items()}}


def chain_request(job):
    """A TTS job's ``rvc`` column as an ``RvcRequest`` (None without one)."""
    from demod_voice.synthesis import RvcRequest

    return RvcRequest(voice=job.rvc, options=dict(job.rvc_options)) if job.rvc else None


def chain_identity(job, cfg) -> dict:
    """Validate a TTS job's RVC options now; what the conversion depends on, for the job hash."""
    if not job.rvc:
        return {}
    from demod_voice.synthesis import registry

    converter = registry.converter()
    converter.options(chain_request(job), cfg)
    return {"rvc": converter.identity(chain_request(job), cfg)}


class TtsRunner:
    """Runs a TTS engine's jobs through the engine layer (whose caches keep models loaded).

    A model that fails to load fails its jobs without reloading; the rest of the run goes on.
    """

    #: Set by each engine: its registry name, and the request builder of its batch section.
    engine = ""
    install_hint = ""
    remember_failures = True

    def __init__(self, cfg, device: str):
        self.cfg = cfg
        self.device = device
        self._failures: dict[str, Exception] = {}

    def request(self, job):
        raise NotImplementedError

    def plan(self, job, request):
        """The plugin's validated plan for ``request`` (what the one audio-cache key is made of)."""
        from demod_voice.synthesis import registry

        if job.model in self._failures:
            raise self._failures[job.model]
        return registry.get(self.engine, self.cfg).options(request, self.cfg)

    def run(self, job, request=None, plan=None) -> Audio:
        """Speak ``job`` (or ``request``, its request already built, with its ``plan`` when validated)."""
        from demod_voice import synthesis
        from demod_voice.captions import join

        if job.model in self._failures:  # a missing model is reported for each of its jobs, loaded once
            raise self._failures[job.model]
        request = request if request is not None else self.request(job)
        try:
            chunks = list(synthesis.synthesize(self.engine, request, self.cfg, self.device, plan=plan))
        except (NotAvailableError, EngineError) as exc:
            if self.remember_failures:
                self._failures[job.model] = exc
            raise
        except ImportError as exc:
            raise NotAvailableError(f"the {self.engine} engine cannot be imported ({exc})",
                                    hint=self.install_hint or "install its extra") from None
        return join(chunks)
