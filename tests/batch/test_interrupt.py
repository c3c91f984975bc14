"""Interrupting a batch (Ctrl-C, SIGKILL) and running it again: nothing partial, nothing done twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batch.batchutil import PIPER_HEADER, by_status, decode, piper_rows, read_report, write_csv
from tests.helpers import cli_env

N_JOBS = 6


def _recorded(state: Path) -> dict[str, int]:
    """Output -> line of every job the state file records as finished."""
    if not state.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5) as db:
            return {out: line for out, line in db.execute("SELECT output, line FROM outputs")}
    except sqlite3.OperationalError:  # the table is not there yet
        return {}


def _start(path: Path, *args: str) -> subprocess.Popen:
    # A session of its own, so a signal reaches the driver and its workers like a terminal's Ctrl-C does.
    return subprocess.Popen([sys.executable, "-m", "demod_voice", "batch", str(path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), start_new_session=True)


def _wait_for_recorded(proc: subprocess.Popen, state: Path, count: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while len(_recorded(state)) < count:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.05)


def _snapshot(outdir: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in outdir.iterdir()} if outdir.exists() else {}


def _check_outputs(outdir: Path) -> None:
    for path in outdir.iterdir():
        assert not path.name.startswith("."), f"temporary file left behind: {path.name}"
        decode(path)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_interrupt_then_resume(isolated_home, jobdir, joe_voice, sig):
    path = write_csv(jobdir / "jobs.csv", PIPER_HEADER, piper_rows(joe_voice, N_JOBS))
    state = jobdir / "jobs.csv.batch-state.sqlite"
    outdir = jobdir / "out"
    proc = _start(path, "--workers", "1" if sig == signal.SIGINT else "2", "--report", str(jobdir / "first.json"))
    _wait_for_recorded(proc, state, 2)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    err = err.decode()

    recorded = _recorded(state)
    finished_lines = set(recorded.values())
    assert 2 <= len(finished_lines) < N_JOBS, "the signal should land midway"
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "interrupted" in err and "finishing the running job" in err
        report = read_report(jobdir / "first.json")
        assert report["interrupted"] is True
        status = by_status(report)
        assert status["done"] == finished_lines  # the running job was finished and recorded, not dropped
        assert status["not_run"] == set(range(2, N_JOBS + 2)) - finished_lines
        assert report["summary"]["done"] + report["summary"]["not_run"] == N_JOBS
        assert set(_snapshot(outdir)) == {Path(o).name for o in recorded}
    else:
        assert proc.returncode == -signal.SIGKILL
        assert not (jobdir / "first.json").exists()
    # Every output on disk is complete; every recorded output is on disk.
    on_disk = _snapshot(outdir)
    assert {Path(o).name for o in recorded} <= set(on_disk)
    for path_ in outdir.iterdir():
        if not path_.name.startswith("."):
            decode(path_)

    # Run again: recorded jobs are skipped untouched, the others run once.
    proc = _start(path, "--report", str(jobdir / "second.json"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    report = read_report(jobdir / "second.json")
    status = by_status(report)
    assert status["skipped"] == finished_lines
    assert status["done"] == set(range(2, N_JOBS + 2)) - finished_lines
    after = _snapshot(outdir)
    for output in recorded:
        name = Path(output).name
        assert after[name] == on_disk[name], f"{name} was written again"
    assert len(after) == N_JOBS
    _check_outputs(outdir)
