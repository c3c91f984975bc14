"""``health [--json]``: what works on this machine."""

from __future__ import annotations

import json

from demod_voice.health import CAPABILITIES


def register(sub, common) -> None:
    p = sub.add_parser("health", parents=[common], help="report engines, GPU, voices, models and config",
                       description="Check the environment. Exit 0 when healthy, 1 when a required capability is broken.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--require", metavar="LIST", default="",
                   help="comma-separated capabilities that must work: " + ", ".join([*CAPABILITIES, "gpu", "ffmpeg"]))
    p.add_argument("--cuda", action="store_true", help="also probe CUDA through torch (imports torch)")
    p.add_argument("--deep", action="store_true",
                   help="also run every installed engine end to end on one word (Piper, XTTS, RVC; XTTS and RVC "
                        "use tiny random-weight models when none is installed); a failure reports 'broken' and "
                        "makes health exit 1; it also prints which engines passed parity with their reference "
                        "implementations in this version")
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    from demod_voice import config
    from demod_voice.errors import UsageError
    from demod_voice.health import format_table, run_checks

    require = tuple(r.strip() for r in args.require.split(",") if r.strip())
    known = set(CAPABILITIES) | {"gpu", "ffmpeg", "config", "voices", "stt"}
    unknown = [r for r in require if r not in known]
    if unknown:
        raise UsageError(f"unknown capability in --require: {', '.join(unknown)}", hint="choose from " + ", ".join(sorted(known)))
    if ctx.flags.get("device") == "gpu":
        require += ("gpu",)
    global_args = []
    if getattr(args, "config", None):
        global_args += ["--config", str(args.config)]
    if ctx.flags.get("device"):
        global_args.append(f"--{ctx.flags['device']}")
    report = run_checks(lambda: config.load(getattr(args, "config", None), flags=ctx.flags),
                        require=require, probe_cuda=args.cuda or "gpu" in require, deep=args.deep,
                        global_args=tuple(global_args))
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0 if report["healthy"] else 1
