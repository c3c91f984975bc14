"""Local worker processes: each loads its engines once and runs jobs sent over a pipe.

Workers are started with SIGINT ignored (inherited through ``spawn``), so a Ctrl-C in the terminal
reaches only the driver, which lets every running job finish. When the driver dies (even by SIGKILL)
a worker sees its pipe close and exits after the job in hand.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection as mpc
import signal
import sys

from demod_voice.batch.worker import Outcome, Worker

_LOGGER = logging.getLogger(__name__)


def _worker_main(conn, cfg, device: str, log_level: int, verbose: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("notice: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger("demod_voice").setLevel(log_level)
    worker = Worker(cfg, device, verbose=verbose)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        outcome = worker.run(job)
        try:
            conn.send(outcome)
        except (BrokenPipeError, OSError):
            return


def _death(exitcode: int | None) -> dict:
    """Message and hint for a worker that died: a signal by its name (SIGSEGV is a crash in native code,
    SIGKILL usually the kernel's out-of-memory killer), never a guess that hides a crash."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = {"SIGKILL": "it was killed, often by the out-of-memory killer; try fewer --workers",
                "SIGSEGV": "a native library crashed on this job; report it with the job's line",
                "SIGABRT": "a native library aborted on this job; report it with the job's line",
                "SIGBUS": "a native library crashed on this job; report it with the job's line"}.get(
                    name, "see the system log for why it was stopped")
        return {"message": f"the worker process died by {name} while running this job", "hint": hint}
    return {"message": f"the worker process exited (exit code {exitcode}) while running this job",
            "hint": "run the job again with -v to see why"}


class LocalBackend:
    """``workers`` processes; ``submit`` gives one a job, ``wait`` returns finished ``(slot, Outcome)``."""

    name = "local"

    def __init__(self, cfg, device: str, workers: int, verbose: bool = False):
        self.cfg = cfg
        self.device = device
        self.workers = workers
        self.verbose = verbose
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, multiprocessing.Process] = {}
        self._conns: dict[int, mpc.Connection] = {}
        self._inflight: dict[int, object] = {}

    def _start(self, slot: int) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, name=f"demod-voice-batch-{slot}", daemon=True,
                                 args=(child, self.cfg, self.device, logging.getLogger("demod_voice").level,
                                       self.verbose))
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child inherits "ignore SIGINT"
        try:
            proc.start()
        finally:
            signal.signal(signal.SIGINT, previous)
        child.close()
        self._procs[slot], self._conns[slot] = proc, parent

    def submit(self, slot: int, job) -> None:
        if slot not in self._procs or not self._procs[slot].is_alive():
            self._start(slot)
        self._inflight[slot] = job
        self._conns[slot].send(job)

    def wait(self, timeout: float) -> list[tuple[int, Outcome]]:
        busy = {self._conns[s]: s for s in self._inflight}
        if not busy:
            return []
        sentinels = {self._procs[s].sentinel: s for s in self._inflight}
        ready = mpc.wait([*busy, *sentinels], timeout)
        done: list[tuple[int, Outcome]] = []
        for item in ready:
            slot = busy.get(item) if item in busy else sentinels.get(item)
            if slot is None or slot not in self._inflight:
                continue
            job = self._inflight[slot]
            try:
                if item in busy or self._conns[slot].poll():
                    outcome = self._conns[slot].recv()
                else:
                    raise EOFError
            except (EOFError, OSError):
                proc = self._procs.pop(slot)
                proc.join(1)
                self._conns.pop(slot).close()
                outcome = Outcome(job.line, False, error={"error": "WorkerDied", **_death(proc.exitcode)})
            del self._inflight[slot]
            done.append((slot, outcome))
        return done

    def close(self, force: bool = False) -> None:
        for _slot, conn in list(self._conns.items()):
            try:
                if not force:
                    conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for _slot, proc in list(self._procs.items()):
            if force:
                proc.terminate()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for conn in self._conns.values():
            conn.close()
        self._procs.clear()
        self._conns.clear()
