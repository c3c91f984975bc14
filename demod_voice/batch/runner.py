"""The batch driver: validate, skip what is done, dispatch by group, write outputs, report.

Only this process writes outputs and the resume state, whatever runs the jobs (local processes or
Ray actors): an output is renamed into place and then recorded, so after a crash every recorded
output is complete and every other job simply runs again.

Ctrl-C stops handing out jobs, lets the running ones finish and be written, prints the summary,
writes the report and exits 130; a second Ctrl-C stops at once (still no partial files).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import logging
import os
import signal
import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

from demod_voice import audio as audio_mod
from demod_voice import paths
from demod_voice.batch import jobs as jobs_mod
from demod_voice.batch.state import ResumeState, default_path, owned_paths
from demod_voice.batch.worker import Outcome
from demod_voice.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, DemodError, InputError

_LOGGER = logging.getLogger(__name__)


@dataclass
class Settings:
    """How to run a job file (the command-line options)."""

    workers: int | None = None
    """Worker processes or actors; None = config ``batch.workers`` (Ray: one per GPU when on GPUs)."""
    resume: bool = True
    fail_fast: bool = False
    dry_run: bool = False
    report: Path | None = None
    state: Path | None = None
    ray: bool = False
    ray_address: str | None = None
    device: str = "cpu"
    quiet: bool = False
    verbose: bool = False


@dataclass
class JobStatus:
    """One row of the report."""

    line: int
    status: str  # done | skipped | failed | invalid | not_run | pending (dry run)
    engine: str = ""
    output: str = ""
    id: str = ""
    seconds: float | None = None
    audio_seconds: float | None = None
    error: dict | None = None


@dataclass
class Summary:
    statuses: dict[int, JobStatus] = field(default_factory=dict)
    interrupted: bool = False
    stopped_by: str | None = None
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s.status == status)

    def counts(self) -> dict:
        keys = ("done", "skipped", "failed", "invalid", "not_run", "pending")
        out = {k: self.count(k) for k in keys}
        out["total"] = len(self.statuses)
        return out

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILURE if self.count("failed") or self.count("invalid") else EXIT_OK


class Scheduler:
    """Hands out jobs so each worker stays on one group (model, reference) as long as it has jobs."""

    def __init__(self, jobs: list):
        self._groups: OrderedDict[tuple, deque] = OrderedDict()
        for job in jobs:
            self._groups.setdefault(job.group, deque()).append(job)
        self._current: dict[int, tuple] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self._groups.values())

    def next(self, slot: int):
        key = self._current.get(slot)
        if key is None or not self._groups.get(key):
            busy = {k for s, k in self._current.items() if s != slot}
            open_groups = [k for k, q in self._groups.items() if q]
            if not open_groups:
                return None
            free = [k for k in open_groups if k not in busy]
            # a group nobody works on yet, else help with the largest one
            key = free[0] if free else max(open_groups, key=lambda k: len(self._groups[k]))
            self._current[slot] = key
        return self._groups[key].popleft()


def _error_line(line: int, kind: str, error: dict) -> str:
    hint = f"; {error['hint']}" if error.get("hint") else ""
    return f"line {line}: {kind}: {error.get('message')}{hint}"


def _remove_stale_parts(output: Path) -> None:
    """Temp files an earlier killed run left beside an output (``.NAME.*.part``)."""
    if output.parent.is_dir():
        for stale in output.parent.glob(f".{glob.escape(output.name)}.*.part"):
            with contextlib.suppress(OSError):
                stale.unlink()


def write_report(path: Path, job_file: Path, state_path: Path | None, summary: Summary, settings: Settings,
                 runner: str) -> None:
    rows = [summary.statuses[k] for k in sorted(summary.statuses)]
    report = {
        "file": str(job_file.absolute()),
        "state": str(state_path) if state_path else None,
        "runner": runner,
        "dry_run": settings.dry_run,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(summary.seconds, 3),
        "interrupted": summary.interrupted,
        "stopped_by": summary.stopped_by,
        "summary": summary.counts(),
        "jobs": [{k: v for k, v in vars(row).items()} for row in rows],
    }
    paths.atomic_write_bytes(path, (json.dumps(report, indent=2) + "\n").encode())


class _Interrupts:
    """First Ctrl-C: set a flag; second: raise KeyboardInterrupt."""

    def __init__(self, on_first):
        self.count = 0
        self._on_first = on_first
        self._previous = None

    def _handle(self, signum, frame):
        self.count += 1
        if self.count == 1:
            self._on_first()
        else:
            raise KeyboardInterrupt

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False


def run(path: str | Path, cfg, settings: Settings) -> int:
    """Run a job file; returns the exit code (0, 1 or 130). File-level problems raise ``InputError``."""
    started = time.perf_counter()
    path = Path(path).expanduser()
    if settings.report is not None:
        audio_mod.check_writable_dir(settings.report)
    job_file = jobs_mod.load(path, cfg)
    summary = Summary()
    say = (lambda msg: None) if settings.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))

    for bad in job_file.invalid:
        print(f"line {bad.line}: invalid: {bad.error.message}" + (f"; {bad.error.hint}" if bad.error.hint else ""),
              file=sys.stderr, flush=True)
        summary.statuses[bad.line] = JobStatus(bad.line, "invalid", engine=bad.engine, output=bad.output, id=bad.id,
                                               error=bad.error.to_dict())

    state_path = Path(settings.state).expanduser() if settings.state else default_path(path)
    _refuse_own_files(job_file.jobs, path, state_path, settings.report)
    state = ResumeState(state_path, readonly=settings.dry_run)
    try:
        recorded = state.recorded() if settings.resume else {}
        pending = []
        for job in job_file.jobs:
            if recorded.get(str(job.output)) == job.hash and job.output.is_file():
                summary.statuses[job.line] = JobStatus(job.line, "skipped", job.engine, str(job.output), job.id)
            else:
                pending.append(job)
                summary.statuses[job.line] = JobStatus(job.line, "pending" if settings.dry_run else "not_run",
                                                       job.engine, str(job.output), job.id)
        say(f"{path.name}: {job_file.total} job(s): {len(pending)} to run, "
            f"{summary.count('skipped')} already done, {len(job_file.invalid)} invalid")
        runner_name = "ray" if settings.ray else "local"
        if settings.dry_run:
            say("dry run: nothing was synthesised")
        elif settings.fail_fast and job_file.invalid:
            summary.stopped_by = "fail-fast"
            say("--fail-fast: not running anything because of the invalid job(s) above")
        elif pending:
            runner_name = _dispatch(pending, cfg, settings, state, summary, say)
    finally:
        state.close()
    summary.seconds = time.perf_counter() - started
    counts = summary.counts()
    parts = [f"{counts[k]} {k.replace('_', ' ')}" for k in ("done", "skipped", "failed", "invalid", "not_run", "pending")
             if counts[k] or k in ("done", "failed")]
    say(("interrupted: " if summary.interrupted else "batch: ") + ", ".join(parts) + f" in {summary.seconds:.1f} s")
    if settings.report is not None:
        write_report(settings.report, path, state_path, summary, settings, runner_name)
        say(f"report: {settings.report}")
    return summary.exit_code


def _refuse_own_files(jobs: list, job_file: Path, state_path: Path, report: Path | None) -> None:
    """A job must not overwrite the job file, the resume state (or its SQLite/lock files) or the report."""
    own = {p: "the resume state of this batch" for p in owned_paths(state_path)}
    own[Path(os.path.realpath(job_file))] = "the job file itself"
    if report is not None:
        own[Path(os.path.realpath(report))] = "the --report file"
    for job in jobs:
        what = own.get(Path(os.path.realpath(job.output)))
        if what:
            raise InputError(f"line {job.line}: output {job.output} is {what}",
                             hint="choose another output path for this job")


def _make_backend(cfg, settings: Settings, count: int):
    if settings.ray:
        from demod_voice.batch.ray_runner import RayBackend

        return RayBackend(cfg, settings.device, settings.workers, settings.ray_address, verbose=settings.verbose)
    from demod_voice.batch.local import LocalBackend

    workers = settings.workers or cfg.get("batch.workers") or 1
    return LocalBackend(cfg, settings.device, max(1, min(workers, count)), verbose=settings.verbose)


def _dispatch(pending: list, cfg, settings: Settings, state: ResumeState, summary: Summary, say) -> str:
    from demod_voice import progress

    for job in pending:
        _remove_stale_parts(job.output)
    scheduler = Scheduler(pending)
    stopping: dict[str, str] = {}

    def on_interrupt():
        stopping.setdefault("reason", "interrupted")
        bar.write("interrupted: finishing the running job(s); press Ctrl-C again to stop now", file=sys.stderr)

    inflight: dict[int, object] = {}
    backend = None
    # a bar on a terminal, one-line records in a log, nothing with -q (demod_voice.progress)
    bar = progress.bar(len(pending), unit="job", desc="batch", quiet=settings.quiet, smoothing=0.1, delay=0)
    try:
        with _Interrupts(on_interrupt):
            backend = _make_backend(cfg, settings, len(pending))
            for slot in range(min(backend.workers, len(pending))):
                job = scheduler.next(slot)
                if job is not None and not stopping:
                    backend.submit(slot, job)
                    inflight[slot] = job
            while inflight:
                for slot, outcome in backend.wait(0.5):
                    job = inflight.pop(slot)
                    if not outcome.ok and settings.fail_fast:
                        stopping.setdefault("reason", "fail-fast")
                    if not stopping:  # hand out the next job first, so the worker runs while we write
                        nxt = scheduler.next(slot)
                        if nxt is not None:
                            backend.submit(slot, nxt)
                            inflight[slot] = nxt
                    ok = _finish(job, outcome, state, summary, bar)
                    bar.update(1)
                    if not ok and settings.fail_fast:
                        stopping.setdefault("reason", "fail-fast")
            backend.close()
    except KeyboardInterrupt:
        stopping["reason"] = "interrupted"
        if backend is not None:
            backend.close(force=True)
    finally:
        bar.close()
    reason = stopping.get("reason")
    summary.interrupted = reason == "interrupted"
    summary.stopped_by = "interrupt" if summary.interrupted else reason
    if reason == "fail-fast":
        say("--fail-fast: stopped after the first failure")
    return backend.name if backend is not None else ("ray" if settings.ray else "local")


def _finish(job, outcome: Outcome, state: ResumeState, summary: Summary, bar) -> bool:
    """Write a finished job's output atomically and record it; report a failure. True when it succeeded."""
    status = summary.statuses[job.line]
    status.seconds = round(outcome.seconds, 3)
    error = outcome.error if not outcome.ok else None
    if outcome.ok:
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
            audio_mod.atomic_write_bytes(job.output, outcome.data)
            if job.captions is not None:
                audio_mod.atomic_write_bytes(job.captions, outcome.captions)
            state.record(job.output, job.hash, job.line, outcome.seconds, outcome.audio_seconds)
        except DemodError as exc:
            error = exc.to_dict()
        except OSError as exc:
            error = InputError(f"cannot write {job.output}: {exc.strerror or exc}",
                               hint="check the output folder's permissions and free space").to_dict()
    if error is None:
        status.status = "done"
        status.audio_seconds = round(outcome.audio_seconds, 3)
        return True
    status.status = "failed"
    status.error = {k: v for k, v in error.items() if v is not None}
    bar.write(_error_line(job.line, "failed", error), file=sys.stderr)
    if error.get("traceback"):
        bar.write(error["traceback"], file=sys.stderr)
    return False
