"""``models list|pull|verify|path``: fetch and check model weights (XTTS-v2, RVC auxiliary weights, ...)."""

from __future__ import annotations

import json


def register(sub, common) -> None:
    p = sub.add_parser("models", parents=[common], help="list, download and verify models",
                       description="Manage model weights: list the known models, download them at a pinned revision "
                                   "with sha256 checks, verify installed files, print where they live.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    lst = msub.add_parser("list", parents=[common], help="known models and whether they are installed")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=run_list)
    pull = msub.add_parser("pull", parents=[common], help="download a model (resumes; checks sha256)")
    pull.add_argument("name", metavar="NAME", help="model name, e.g. xtts-v2 or rvc-aux")
    pull.add_argument("--accept-license", action="store_true",
                      help="accept the model's licence (asked once per model; remembered in the data dir)")
    pull.add_argument("--force", action="store_true", help="download every file again")
    pull.set_defaults(func=run_pull)
    ver = msub.add_parser("verify", parents=[common], help="check an installed model's files (size and sha256)")
    ver.add_argument("name", metavar="NAME")
    ver.add_argument("--json", action="store_true", help="machine-readable output")
    ver.set_defaults(func=run_verify)
    path = msub.add_parser("path", parents=[common], help="print the folder a model lives in")
    path.add_argument("name", metavar="NAME")
    path.set_defaults(func=run_path)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 0)[1])


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def run_list(args, ctx) -> int:
    from demod_voice import models

    out = []
    for entry in models.registry(ctx.cfg).values():
        states = models.status(entry, ctx.cfg)
        out.append((entry, models.summary(states, entry), models.local_dir(entry, ctx.cfg)))
    if args.json:
        print(json.dumps([{**e.to_dict(), "status": s, "path": str(p)} for e, s, p in out], indent=2))
        return 0
    rows = [("NAME", "KIND", "STATUS", "SIZE", "LICENCE", "PATH")]
    rows += [(e.name, e.kind, s, models.size_label(e), e.license, str(p)) for e, s, p in out]
    _table(rows)
    return 0


def run_pull(args, ctx) -> int:
    from demod_voice import models

    entry = models.get(args.name, ctx.cfg)
    if entry.license_gate and not models.license_accepted(entry, ctx.cfg):
        # Show the licence whatever happens next; the pull itself refuses without --accept-license.
        print(models.license_notice(entry), file=__import__("sys").stderr)
    states = models.pull(entry, ctx.cfg, accept=args.accept_license, force=args.force, quiet=ctx.quiet,
                         say=ctx.say)
    unverified = [s.path for s in states if s.state == "ok (size only)"]
    ctx.say(f"{entry.name}: {len(states)} files ready in {models.local_dir(entry, ctx.cfg)}"
            + (f" ({', '.join(unverified)} checked by size only: no pinned sha256)" if unverified else ""))
    return 0


def run_verify(args, ctx) -> int:
    from demod_voice import models

    entry = models.get(args.name, ctx.cfg)
    states = models.verify(entry, ctx.cfg)
    required = {f.path for f in entry.files if f.required}
    bad = [s for s in states if not s.good and (s.path in required or s.state != "missing")]
    if args.json:
        print(json.dumps({"model": entry.name, "ok": not bad,
                          "files": [{"path": s.path, "state": s.state, "size": s.size, "detail": s.detail}
                                    for s in states]}, indent=2))
    else:
        _table([("FILE", "STATE", "DETAIL")] + [(s.path, s.state, s.detail) for s in states])
    if bad:
        from demod_voice.errors import EngineError

        raise EngineError(f"{entry.name} failed verification: " + ", ".join(f"{s.path} ({s.state})" for s in bad),
                          hint=f"run: demod-voice models pull {entry.name} (bad files are downloaded again)")
    return 0


def run_path(args, ctx) -> int:
    from demod_voice import models

    print(models.local_dir(models.get(args.name, ctx.cfg), ctx.cfg))
    return 0
