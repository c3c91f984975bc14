"""``serve --ray ADDRESS``: start or join Ray, run the application, and stop it cleanly.

``local`` starts a Ray instance in this process (``ray.init(address="local")``); Ctrl-C or SIGTERM then
removes the application, shuts Serve down and stops that instance with every process it started. ``auto`` or
an address joins a running cluster; a stop then removes only this application (Serve and the cluster stay).
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from demod_voice.errors import DemodError, NotAvailableError, install_hint

_LOGGER = logging.getLogger(__name__)


def serve_ray(cfg, address: str, ctx) -> int:
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise NotAvailableError(f"serve --ray needs {exc.name}, which is not installed",
                                hint=install_hint("ray")) from None
    from demod_voice.server.ray_serve import app as ray_app
    from demod_voice.server.ray_serve import settings

    settings.check(cfg)  # a bad ray_serve entry is a config error before Ray starts
    local = address == "local"
    host, port = cfg.get("server.host"), cfg.get("server.port")
    name = cfg.get("ray_serve.app_name")
    stop = threading.Event()
    try:
        if local:
            _start_local(ray, cfg, ctx)
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=ctx.verbose)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DemodError(f"cannot reach the Ray cluster at {address}: {exc}",
                         hint="start it with 'ray start --head', or use --ray local") from None
    # After ray.init: Ray's core installs a fatal-signal handler for SIGTERM that aborts the process (exit -6);
    # ours replaces it so that SIGTERM and Ctrl-C stop Serve and Ray cleanly.
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        serve.start(http_options={"host": host, "port": port, "request_timeout_s": None},
                    proxy_location="HeadOnly")
        application = ray_app.build(cfg, name)
        ctx.say(f"starting the Serve application '{name}' on Ray ({address}) ...")
        serve.run(application, name=name, route_prefix="/", blocking=False)
        ctx.say(f"serving on http://{host}:{port} (docs: /docs, page: /) through Ray Serve")
        while not stop.wait(0.5):
            pass
        ctx.say("stopping ...")
        return 0
    finally:
        try:
            if local:
                serve.shutdown()
            else:
                serve.delete(name)
        except Exception as exc:  # the cluster went away first: nothing of ours is left on it
            _LOGGER.warning("could not remove the Serve application: %s", exc)
        ray.shutdown()
        if local:  # whatever the instance left behind (workers of replicas still stopping)
            stop_descendants()
        _restore(previous)


def _start_local(ray, cfg, ctx) -> None:
    """A local instance, tried three times: Ray's raylet waits a fixed ~15 s for its agents (Python processes)
    to start, which a loaded machine can miss; a failed start leaves no process behind."""
    attempts = 3
    for attempt in range(attempts):
        try:
            # Ray's own RAY_TMPDIR chooses its session folder (keep it short: socket paths stay under 108 bytes)
            ray.init(address="local", num_cpus=cfg.get("ray_serve.num_cpus") or os.cpu_count(),
                     include_dashboard=False, logging_level=logging.WARNING, log_to_driver=ctx.verbose)
            return
        except Exception as exc:
            ray.shutdown()
            stop_descendants()  # a failed start leaves its GCS, dashboard and monitor running
            if "timed out during startup" not in str(exc):
                raise
            if attempt == attempts - 1:
                raise DemodError("the local Ray instance did not start: its raylet gave up waiting for its agents",
                                 hint="the machine is probably overloaded: try again, or start Ray with "
                                      "'ray start --head' and use --ray auto") from None
            ctx.say("notice: Ray did not start in time (its agents were slow); trying again")


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (default: this one), from /proc; empty where there is no /proc."""
    import pathlib

    parents: dict[int, int] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [pid or os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _session_orphans() -> list[int]:
    """Ray's agents whose raylet died first (re-parented, renamed ``ray::...``): found by the logs they hold
    open in this process's own session folders (``session_<date>_<this pid>``), so nobody else's."""
    import pathlib

    mark = f"_{os.getpid()}/logs/"
    found = []
    for fd_dir in pathlib.Path("/proc").glob("[0-9]*/fd"):
        try:
            if int(fd_dir.parent.name) != os.getpid() and any(
                    "/session_" in (target := os.readlink(fd)) and mark in target for fd in fd_dir.iterdir()):
                found.append(int(fd_dir.parent.name))
        except (OSError, ValueError):
            continue
    return found


def stop_descendants(grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, the processes this one started (the local Ray instance's, nothing else)."""
    import time

    pids = list(dict.fromkeys([*descendants(), *_session_orphans()]))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Running (a zombie child is reaped here and counts as gone)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
