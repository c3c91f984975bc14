"""``serve``: the HTTP voice service (OpenAI-compatible + native API, web page)."""

from __future__ import annotations


def register(sub, common) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the HTTP voice service",
                       description="Serve an OpenAI-compatible speech API, the native API (/docs) and a web page at /. "
                                   "Stops gracefully on Ctrl-C/SIGTERM: requests in flight finish first.")
    p.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default: server.port, 5002)")
    p.add_argument("--preload", action="store_true", default=None, help="load the default voice before accepting requests")
    p.add_argument("--no-cache", action="store_true", help="disable the audio cache")
    p.add_argument("--workers", type=int, metavar="N", help="CPU engine jobs at once (server.cpu_workers)")
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="SEC",
                   help="seconds to let requests in flight finish on shutdown (default 30)")
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    from demod_voice.errors import NotAvailableError, UsageError

    for key, value in (("server.host", args.host), ("server.port", args.port),
                       ("server.cpu_workers", args.workers), ("server.preload", args.preload)):
        if value is not None:
            ctx.flags[key] = value
    if args.no_cache:
        ctx.flags["server.cache"] = False
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is out of range", hint="use 1-65535")
    cfg = ctx.cfg
    try:
        import uvicorn

        from demod_voice.server.app import create_app
    except ImportError as exc:
        raise NotAvailableError(f"the server needs {exc.name}, which is not installed",
                                hint="install the 'server' extra: pip install 'demod-voice[server]'") from None
    app = create_app(cfg)
    host, port = cfg.get("server.host"), cfg.get("server.port")
    sock = bind(host, port)
    ctx.say(f"serving on http://{host}:{port} (docs: /docs, page: /)")
    # uvicorn drains requests in flight on SIGTERM, then re-raises the signal with the previous handler:
    # a no-op handler makes a requested stop exit 0 (Ctrl-C still ends as "interrupted", 130).
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    config = uvicorn.Config(app, log_level="warning" if not ctx.verbose else "info", access_log=ctx.verbose,
                            timeout_graceful_shutdown=args.graceful_timeout,
                            timeout_keep_alive=cfg.get("server.keep_alive_timeout_s"),
                            limit_concurrency=cfg.get("server.max_connections"))
    uvicorn.Server(config).run(sockets=[sock])
    stop_engines(app.state.service.active, args.graceful_timeout, ctx)
    return 0


def bind(host: str, port: int):
    """The listening socket, bound here so a port in use is a clear error (exit 1), not uvicorn's own exit."""
    import socket

    from demod_voice.errors import DemodError

    sock = None
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except socket.gaierror as exc:
        raise DemodError(f"cannot listen on {host}: {exc.strerror}", hint="check server.host / --host",
                         exit_code=2) from None
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise DemodError(f"cannot listen on {host}:{port}: {exc.strerror}",
                         hint="another process uses this port: stop it or choose --port") from None
    sock.set_inheritable(True)
    return sock


def stop_engines(active: int, grace: float, ctx) -> None:
    """Bound the shutdown: engine jobs still running when the graceful timeout has passed are abandoned.

    uvicorn has already waited ``grace`` seconds for the requests; engine threads cannot be interrupted,
    so the process exits now instead of waiting for them (nothing half-written survives: every file
    write is atomic and the cache is closed).
    """
    if active:
        import os
        import sys

        ctx.say(f"notice: stopping with {active} engine job(s) still running after the {grace:g} s graceful timeout")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
