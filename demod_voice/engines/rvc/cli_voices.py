"""``rvc add NAME MODEL.pth [INDEX]`` and ``rvc list``: register RVC voices so ``--model NAME`` works."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub, common) -> None:
    p = sub.add_parser("rvc", parents=[common], help="register and list RVC voices",
                       description="Manage RVC voices kept under <data_dir>/rvc-voices/NAME/.")
    rsub = p.add_subparsers(dest="rvc_command", metavar="ACTION")
    add = rsub.add_parser("add", parents=[common], help="register an RVC voice (.pth and optional .index)",
                          description="Check MODEL.pth (safely: weights only) and INDEX, then copy them to "
                                      "<data_dir>/rvc-voices/NAME/ so 'rvc-convert --model NAME' and "
                                      "'piper-infer --rvc NAME' find them.")
    add.add_argument("name", metavar="NAME", help="voice name (A-Z a-z 0-9 _ . -, up to 64 characters)")
    add.add_argument("model", metavar="MODEL.pth", help="RVC voice model as exported by RVC WebUI/Applio")
    add.add_argument("index", metavar="INDEX", nargs="?", help="its faiss .index (added_*.index)")
    add.add_argument("--force", action="store_true", help="replace a voice of the same name")
    add.set_defaults(func=run_add)
    lst = rsub.add_parser("list", parents=[common], help="list registered RVC voices")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=run_list)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 2)[1])


def run_add(args, ctx) -> int:
    from demod_voice.needs import require

    require("rvc", "registering an RVC voice")  # it reads the checkpoint with torch
    from demod_voice.engines.rvc import voices

    folder = voices.add(ctx.cfg, args.name, Path(args.model), Path(args.index) if args.index else None,
                        force=args.force)
    meta = json.loads((folder / voices.META_FILE).read_text(encoding="utf-8"))
    ctx.say(f"added RVC voice '{args.name}' ({meta['version']}, {'f0' if meta['f0'] else 'no f0'}, "
            f"{meta['sample_rate']} Hz{', with index' if args.index else ''}) in {folder}")
    return 0


def run_list(args, ctx) -> int:
    from demod_voice.engines.rvc import voices

    entries = voices.catalog_entries(ctx.cfg)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
    elif not entries:
        ctx.say(f"no RVC voices registered in {voices.root(ctx.cfg)}; add one with 'demod-voice rvc add NAME MODEL.pth'")
    else:
        for e in entries:
            print(f"{e.name}\t{e.quality}\t{e.sample_rate or ''} Hz\t{'f0' if e.extra.get('f0') else 'no-f0'}\t"
                  f"{'index' if e.extra.get('index') else 'no index'}")
    return 0
