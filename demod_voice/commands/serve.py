"""``serve``: the HTTP voice service (OpenAI-compatible + native API, web page) and/or the Wyoming server."""

from __future__ import annotations


def register(sub, common) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the HTTP voice service (and Wyoming for Home Assistant)",
                       description="Serve an OpenAI-compatible speech and transcription API, the native API (/docs) "
                                   "and a web page at /; with --wyoming also Home Assistant's Wyoming protocol, in "
                                   "the same process with the same voices. Stops gracefully on Ctrl-C/SIGTERM: "
                                   "requests in flight finish first.")
    p.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default: server.port, 5002)")
    p.add_argument("--preload", action="store_true", default=None, help="load the default voice before accepting requests")
    p.add_argument("--no-cache", action="store_true", help="disable the audio cache")
    p.add_argument("--workers", type=int, metavar="N", help="CPU engine jobs at once (server.cpu_workers)")
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="SEC",
                   help="seconds to let requests in flight finish on shutdown (default 30)")
    p.add_argument("--wyoming", metavar="URI",
                   help="also serve Wyoming (Home Assistant) on tcp://HOST:PORT or unix://PATH (wyoming.uri)")
    p.add_argument("--allow-insecure-keys-file", action="store_true", default=None,
                   help="accept a server.api_keys_file that other users can read (refused by default)")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run on Ray Serve: one deployment per engine, one shared cache (docs/scale-out.md); ADDRESS "
                        "local (start Ray here), auto or ray://host:port (default: ray_serve.address)")
    p.add_argument("--no-http", action="store_true", help="serve Wyoming only (needs --wyoming or wyoming.uri)")
    p.add_argument("--zeroconf", action="store_true", default=None,
                   help="advertise the Wyoming TCP listener over mDNS for Home Assistant discovery (wyoming.zeroconf)")
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    from demod_voice.errors import NotAvailableError, UsageError, install_hint

    for key, value in (("server.host", args.host), ("server.port", args.port),
                       ("server.cpu_workers", args.workers), ("server.preload", args.preload),
                       ("wyoming.uri", args.wyoming), ("wyoming.zeroconf", args.zeroconf),
                       ("server.allow_insecure_keys_file", args.allow_insecure_keys_file)):
        if value is not None:
            ctx.flags[key] = value
    if args.no_cache:
        ctx.flags["server.cache"] = False
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is out of range", hint="use 1-65535")
    cfg = ctx.cfg
    _private_files(cfg)
    wyoming_uri = cfg.get("wyoming.uri")
    if args.no_http and not wyoming_uri:
        raise UsageError("--no-http leaves nothing to serve without a Wyoming address",
                         hint="add --wyoming tcp://127.0.0.1:10200 (or set wyoming.uri)")
    if cfg.get("wyoming.zeroconf") and not wyoming_uri:
        raise UsageError("--zeroconf advertises the Wyoming server, but none is configured",
                         hint="add --wyoming tcp://0.0.0.0:10200")
    if args.ray is not None:
        if wyoming_uri or args.no_http:
            raise UsageError("--ray serves HTTP only", hint="run Wyoming from a separate 'serve --wyoming' process")
        from demod_voice.server.ray_serve.run import serve_ray

        return serve_ray(cfg, args.ray or cfg.get("ray_serve.address"), ctx)
    if wyoming_uri:
        from demod_voice.wyoming.server import parse_uri

        parse_uri(wyoming_uri)  # a bad address is a usage error before anything loads
    import asyncio
    import signal

    try:
        if wyoming_uri:
            import wyoming  # noqa: F401
        if not args.no_http:
            import uvicorn

            from demod_voice.server.app import create_app
        else:
            from demod_voice.server.service import Service
    except ImportError as exc:
        raise NotAvailableError(f"the server needs {exc.name}, which is not installed",
                                hint=install_hint("server")) from None
    if args.no_http:
        from demod_voice.wyoming.server import serve_forever

        service = Service(cfg)
        try:
            if cfg.get("server.preload"):
                service.preload()
            asyncio.run(serve_forever(service, cfg, args.graceful_timeout,
                                      ready=lambda server: ctx.say(f"serving Wyoming on {server.address}")))
        finally:
            service.close()
        return 0

    app = create_app(cfg)
    host, port = cfg.get("server.host"), cfg.get("server.port")
    sock = bind(host, port)
    ctx.say(f"serving on http://{host}:{port} (docs: /docs, page: /)")
    # uvicorn drains requests in flight on SIGTERM, then re-raises the signal with the previous handler:
    # a no-op handler makes a requested stop exit 0 (Ctrl-C still ends as "interrupted", 130).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    from demod_voice.server import connections

    # every open connection, HTTP and Wyoming, counts against one bound below the descriptor limit
    gate = connections.Gate(min(connections.descriptor_budget(),
                                cfg.get("server.max_connections") + (cfg.get("wyoming.max_connections") if wyoming_uri else 0)))
    app.state.service.gate = gate
    config = uvicorn.Config(app, log_level="warning" if not ctx.verbose else "info", access_log=ctx.verbose,
                            timeout_graceful_shutdown=args.graceful_timeout,
                            timeout_keep_alive=cfg.get("server.keep_alive_timeout_s"),
                            limit_concurrency=cfg.get("server.max_connections"),
                            http=connections.guarded_protocol(gate, cfg.get("server.header_timeout_s")))
    if wyoming_uri:
        asyncio.run(_serve_both(config, app, cfg, args.graceful_timeout, ctx, sock))
    else:
        _quiet_server(uvicorn.Server)(config).run(sockets=[sock])
    stop_engines(app.state.service.active, args.graceful_timeout, ctx)
    return 0


async def _serve_both(config, app, cfg, grace: float, ctx, sock) -> None:
    """uvicorn and the Wyoming server on one event loop, sharing ``app.state.service``."""
    import uvicorn

    from demod_voice.wyoming.server import WyomingServer

    wyoming = WyomingServer(app.state.service, cfg)

    class Server(_quiet_server(uvicorn.Server)):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                await wyoming.start()
                ctx.say(f"serving Wyoming on {wyoming.address}")

        async def shutdown(self, sockets=None) -> None:
            await wyoming.stop(grace)  # before the service closes under it
            await super().shutdown(sockets)

    await Server(config).serve(sockets=[sock])


def _quiet_server(base):
    """uvicorn's Server, with accept failures (out of descriptors) logged at most once per interval."""

    class Quiet(base):
        async def startup(self, sockets=None) -> None:
            import asyncio

            from demod_voice.server import connections

            connections.quiet_accept_errors(asyncio.get_running_loop())
            await super().startup(sockets)

    return Quiet


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


def _private_files(cfg) -> None:
    """Everything the server writes (samples, cache files, the audit log, models) is readable by its own
    user only: umask 077 gives files 0600 and folders 0700; existing data and cache roots are closed too."""
    import os

    os.umask(0o077)
    for root in (cfg.data_dir, cfg.cache_dir):
        try:
            if root.is_dir() and root.stat().st_uid == os.getuid():
                os.chmod(root, 0o700)
        except OSError:
            pass
