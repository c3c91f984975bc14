"""Training jobs: one runner for the CLI and the server.

A job is a folder ``<data_dir>/training/jobs/<id>/``:

* ``job.json`` -- what to train: user, engine, voice name, data (a dataset folder or a profile), settings;
* ``status.json`` -- ``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``, the error, the pid;
* ``progress.jsonl`` -- one JSON record per training step (``step``, ``epoch``, ``loss``, ``eta_s``) and events
  (``resume``, ``warmstart``, ``phase``);
* ``log.txt`` -- the trainer's own output.

``start`` runs the worker (``python -m demod_voice.training.worker JOB``) in its own subprocess and session, so
it outlives a client that goes away; ``cancel`` asks it to stop (SIGINT): it finishes the step, saves
``last.ckpt`` and ends ``cancelled``. The result is registered as the user's voice (``training.store``).
Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from demod_voice.errors import InputError, NotAvailableError, install_hint
from demod_voice.paths import atomic_write_text, validate_name

ENGINES = ("piper",)
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = ("succeeded", "failed", "cancelled")
#: What the train extra brings (checked before any data or weights work).
TRAIN_MODULES = ("torch", "lightning", "piper.train", "monotonic_alignment_search")


def require_trainer() -> None:
    """Exit 2 with the install hint when the ``train`` extra is missing (cheap: imports nothing)."""
    import importlib.util

    for name in TRAIN_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise NotAvailableError(f"training needs the Python package '{name.split('.')[0]}', which is not "
                                    "installed", hint=install_hint("train"))


class Stop:
    """A stop request (Ctrl-C, cancel) as a signal handler; training honours it at the next step boundary."""

    def __init__(self):
        self.requested = False

    def __call__(self, *_):
        self.requested = True


@dataclass
class Spec:
    """What a job trains (``job.json``)."""

    user: str
    voice: str
    engine: str = "piper"
    dataset: str | None = None
    profile: str | None = None
    language: str = "en-us"
    arch: str = "medium"
    batch_size: int = 32
    max_steps: int | None = None
    max_epochs: int | None = None
    accelerator: str = "auto"
    checkpoint_every: int = 500
    warmstart: str | None = None
    resume: bool = False
    force: bool = False
    config: str | None = None
    """The config file the job was started with (the worker loads the same)."""
    data_dir: str = ""
    id: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8])
    created: float = field(default_factory=time.time)

    def check(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"training engine '{self.engine}' is not supported",
                             hint="'piper' trains; check gpt-sovits and rvc data with 'train readiness'")
        validate_name(self.voice, "voice name")
        validate_name(self.user, "user name")
        if (self.dataset is None) == (self.profile is None):
            raise InputError("give a dataset or a profile to train on")
        if self.profile is not None:
            validate_name(self.profile, "profile name")
        for key in ("max_steps", "max_epochs", "batch_size", "checkpoint_every"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InputError(f"{key} must be a whole number of 1 or more, got {value!r}")


def jobs_root(cfg) -> Path:
    return Path(cfg.data_dir) / "training" / "jobs"


class Job:
    """One job folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @property
    def id(self) -> str:
        return self.folder.name

    def spec(self) -> Spec:
        return Spec(**json.loads((self.folder / "job.json").read_text(encoding="utf-8")))

    def status(self) -> dict:
        try:
            return json.loads((self.folder / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"status": "queued"}

    def set_status(self, status: str, **fields) -> None:
        data = {**self.status(), "status": status, "updated": time.time(), **fields}
        atomic_write_text(self.folder / "status.json", json.dumps(data, indent=2))

    def records(self) -> list[dict]:
        path = self.folder / "progress.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line being written
        return out

    def record(self, entry: dict) -> None:
        with open(self.folder / "progress.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({**entry, "time": round(time.time(), 3)}) + "\n")
            fh.flush()

    def progress(self) -> dict:
        steps = [r for r in self.records() if "step" in r and "event" not in r]
        last = steps[-1] if steps else {}
        return {k: last.get(k) for k in ("step", "epoch", "loss", "eta_s")}

    def view(self) -> dict:
        """The API's view: ``{id, status, progress, error?, voice, engine}``."""
        status, spec = self.status(), self.spec()
        out = {"id": self.id, "status": status.get("status", "queued"), "engine": spec.engine, "voice": spec.voice,
               "progress": self.progress()}
        if status.get("error"):
            out["error"] = status["error"]
        return out

    def alive(self) -> bool:
        pid = self.status().get("pid")
        if not pid:
            return False
        try:
            os.kill(int(pid), 0)
        except (OSError, ValueError):
            return False
        return True


def create(cfg, spec: Spec) -> Job:
    spec.check()
    spec.data_dir = str(cfg.data_dir)
    folder = jobs_root(cfg) / spec.id
    folder.mkdir(parents=True, exist_ok=False)
    atomic_write_text(folder / "job.json", json.dumps(asdict(spec), indent=2))
    job = Job(folder)
    job.set_status("queued")
    return job


def get(cfg, job_id: str, user: str | None = None) -> Job | None:
    """The job ``job_id`` (of ``user`` when given), or None."""
    try:
        validate_name(job_id, "job id")
    except InputError:
        return None
    folder = jobs_root(cfg) / job_id
    if not (folder / "job.json").is_file():
        return None
    job = Job(folder)
    if user is not None and job.spec().user != user:
        return None
    return job


def start(job: Job, env: dict | None = None) -> subprocess.Popen:
    """Run the worker for ``job`` in its own process (and session: a client's Ctrl-C or disconnect is not its)."""
    log = open(job.folder / "log.txt", "ab")  # noqa: SIM115 - handed to the child
    environment = dict(os.environ if env is None else env)
    environment.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen([sys.executable, "-m", "demod_voice.training.worker", str(job.folder)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=environment,
                            start_new_session=True)
    log.close()
    state = job.status().get("status")  # a worker that already ended keeps its own final state
    job.set_status(state if state in FINAL else "running", pid=proc.pid, started=time.time())
    return proc


def cancel(job: Job) -> None:
    """Ask the job to stop: queued jobs end at once, a running one after its current step and a checkpoint."""
    state = job.status().get("status")
    if state == "queued" and not job.alive():
        job.set_status("cancelled", finished=time.time())
        return
    pid = job.status().get("pid")
    if state == "running" and pid:
        try:
            os.kill(int(pid), signal.SIGINT)
        except OSError:
            pass


def finish(job: Job, returncode: int) -> None:
    """After the worker exited: a job it left unfinished (killed, crashed before writing) is ``failed``."""
    if job.status().get("status") not in FINAL:
        job.set_status("failed", finished=time.time(), exit_code=1,
                       error=f"the training process ended unexpectedly (exit code {returncode})",
                       hint=f"see {job.folder / 'log.txt'}")


class Queue:
    """Jobs of one device, run one at a time in submission order by a background thread (the server's)."""

    def __init__(self):
        import collections
        import threading

        self._pending: collections.deque[Job] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: Job | None = None

    def submit(self, job: Job) -> None:
        import threading

        with self._lock:
            self._pending.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="training-jobs", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
                job = self._pending.popleft()
            if job.status().get("status") != "queued":
                continue  # cancelled while waiting
            self.current = job
            try:
                proc = start(job)
                finish(job, proc.wait())
            except Exception as exc:  # noqa: BLE001 - one broken job must not stop the queue
                job.set_status("failed", finished=time.time(), error=f"cannot start the trainer: {exc}")
            finally:
                self.current = None
