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
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if local:
            _start_local(ray, cfg, ctx)
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=ctx.verbose)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        _restore(previous)
        raise DemodError(f"cannot reach the Ray cluster at {address}: {exc}",
                         hint="start it with 'ray start --head', or use --ray local") from None
    try:
        serve.start(http_options={"host": host, "port": port, "request_timeout_s": None},
                    proxy_location="HeadOnly" if local else None)
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
        _restore(previous)


def _start_local(ray, cfg, ctx) -> None:
    """A local instance; started twice at most: Ray gives its raylet a fixed 30 s to register, which a
    loaded machine can miss (the failed start leaves no process behind)."""
    for attempt in range(2):
        try:
            # Ray's own RAY_TMPDIR chooses its session folder (keep it short: socket paths stay under 108 bytes)
            ray.init(address="local", num_cpus=cfg.get("ray_serve.num_cpus") or os.cpu_count(),
                     include_dashboard=False, logging_level=logging.WARNING, log_to_driver=ctx.verbose)
            return
        except Exception as exc:
            if attempt or "timed out during startup" not in str(exc):
                raise
            ray.shutdown()
            ctx.say("notice: Ray did not start within its 30 s; trying once more")


def _restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
