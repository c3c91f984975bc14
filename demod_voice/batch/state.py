"""The resume record: which output was written by which job hash.

A small SQLite file beside the job file (``lines.csv`` -> ``lines.csv.batch-state.sqlite``). One row per output,
written by the driver right after the output file is renamed into place, so a run killed at any moment
leaves only rows for complete outputs. A job is skipped on resume when its output exists and the recorded
hash equals the job's hash; any change to the text, options, voice or reference files changes the hash.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from pathlib import Path

from demod_voice.errors import InputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    output TEXT PRIMARY KEY,
    job_hash TEXT NOT NULL,
    line INTEGER,
    finished REAL,
    seconds REAL,
    audio_seconds REAL
)
"""


def default_path(job_file: Path) -> Path:
    return job_file.absolute().parent / f"{job_file.name}.batch-state.sqlite"


def owned_paths(state: Path) -> list[Path]:
    """The state file and the files SQLite and the lock keep beside it: no job may write to these."""
    state = Path(os.path.realpath(state))
    return [state, *(state.with_name(state.name + suffix) for suffix in ("-wal", "-shm", "-journal", ".lock"))]


class StateLock:
    """An exclusive lock on a resume state, so two runs never work through the same jobs at once.

    ``flock`` on ``STATE.lock`` (released by the kernel when the process dies, even by SIGKILL); the
    file holds the owner's pid so a second run can say who has it.
    """

    def __init__(self, state: Path):
        self.path = Path(f"{state}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"cannot create the lock {self.path}: {exc.strerror}",
                             hint="pass --state PATH in a writable folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise InputError(f"the resume state {self.path.with_suffix('')} is in use by another batch run "
                             f"(pid {holder})", hint="wait for it to finish, or pass --state PATH for a separate run"
                             ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class ResumeState:
    """Read and record finished outputs. Only the driver process writes."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._db: sqlite3.Connection | None = None
        self._lock: StateLock | None = None
        if readonly and not self.path.exists():
            return
        if not readonly:
            self._lock = StateLock(self.path)
            self._lock.acquire()
        try:
            uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
            self._db = sqlite3.connect(uri, uri=readonly, timeout=30, isolation_level=None)
            if not readonly:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise InputError(f"cannot use the resume state file {self.path}: {exc}",
                             hint="delete it to start over, or pass --state PATH / --no-resume") from None

    def recorded(self) -> dict[str, str]:
        """Output path -> job hash of everything recorded so far."""
        if self._db is None:
            return {}
        try:
            return dict(self._db.execute("SELECT output, job_hash FROM outputs"))
        except sqlite3.OperationalError:  # read-only view of a file without the table yet
            return {}

    def record(self, output: Path, job_hash: str, line: int, seconds: float, audio_seconds: float) -> None:
        assert self._db is not None and not self.readonly
        self._db.execute(
            "INSERT OR REPLACE INTO outputs (output, job_hash, line, finished, seconds, audio_seconds) "
            "VALUES (?, ?, ?, ?, ?, ?)", (str(output), job_hash, line, time.time(), seconds, audio_seconds))

    def forget(self, output: Path) -> None:
        if self._db is not None and not self.readonly:
            self._db.execute("DELETE FROM outputs WHERE output = ?", (str(output),))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
