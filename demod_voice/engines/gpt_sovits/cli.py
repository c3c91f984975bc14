"""``gpt-sovits start|stop|status``: manage the user's GPT-SoVITS api_v2 server (the gpt-sovits engine's backend)."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub, common) -> None:
    p = sub.add_parser("gpt-sovits", parents=[common], help="start, stop and check a GPT-SoVITS api_v2 server",
                       description="Run the api_v2.py of a GPT-SoVITS checkout you installed, on 127.0.0.1, with a "
                                   "PID file and a log under <cache_dir>/gpt-sovits/. The gpt-sovits engine "
                                   "(router chains, batch, HTTP, Wyoming) speaks to it.")
    gsub = p.add_subparsers(dest="gpt_sovits_command", metavar="ACTION")
    start = gsub.add_parser("start", parents=[common], help="start api_v2.py and wait until it answers")
    start.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default gpt_sovits.port, 9880)")
    start.add_argument("--install-dir", metavar="DIR", default=None,
                       help="the GPT-SoVITS checkout with api_v2.py (default gpt_sovits.install_dir)")
    start.add_argument("--timeout", type=float, default=None, metavar="S",
                       help="seconds to wait for it to answer (default gpt_sovits.start_timeout_s)")
    start.set_defaults(func=run_start)
    stop = gsub.add_parser("stop", parents=[common], help="stop the server 'start' started")
    stop.set_defaults(func=run_stop)
    status = gsub.add_parser("status", parents=[common], help="is it running, where, and does it answer (exit 1: not running)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=run_status)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 2)[1])


def run_start(args, ctx) -> int:
    from demod_voice.config import check_option
    from demod_voice.engines.gpt_sovits import process as gpt_sovits
    from demod_voice.errors import UsageError

    install = args.install_dir or ctx.cfg.get("gpt_sovits.install_dir")
    if not install:
        raise UsageError("no GPT-SoVITS install dir", hint="pass --install-dir DIR or set gpt_sovits.install_dir")
    port = check_option("gpt_sovits.port", args.port, "command line") if args.port is not None else ctx.cfg.get("gpt_sovits.port")
    timeout = args.timeout if args.timeout is not None else ctx.cfg.get("gpt_sovits.start_timeout_s")
    state = gpt_sovits.start(ctx.cfg, Path(install), port, timeout)
    ctx.say(f"GPT-SoVITS api_v2 running at {state.url} (pid {state.pid}); log {gpt_sovits.state_dir(ctx.cfg) / 'api_v2.log'}")
    return 0


def run_stop(args, ctx) -> int:
    from demod_voice.engines.gpt_sovits import process as gpt_sovits

    state = gpt_sovits.stop(ctx.cfg)
    ctx.say(f"stopped GPT-SoVITS (pid {state.pid})" if state else "GPT-SoVITS was not running")
    return 0


def run_status(args, ctx) -> int:
    from demod_voice.engines.gpt_sovits import process as gpt_sovits

    report = gpt_sovits.status(ctx.cfg)
    if args.json:
        print(json.dumps(report, indent=2))
    elif report["running"]:
        print(f"running\tpid {report['pid']}\t{report['url']}\t{'answers' if report['answers'] else 'not answering'}"
              f"\tlog {report['log']}")
    else:
        print(f"not running\t{report['url']}\t{'answers (not started here)' if report['answers'] else 'no answer'}")
    return 0 if report["running"] or report["answers"] else 1
