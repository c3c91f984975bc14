"""``batch FILE``: many synthesis jobs from a CSV or JSONL file, resumable, locally or on Ray."""

from __future__ import annotations

import argparse
from pathlib import Path

from demod_voice.arguments import positive_int


def register(sub, common) -> None:
    p = sub.add_parser(
        "batch", parents=[common], help="run synthesis jobs from a CSV/JSONL file",
        description="Run every job in FILE. CSV: reference,text,output[,language,speaker] (the original columns, "
                    "header optional) or a header naming extended columns (engine, voice, model, input, format, "
                    "options); JSONL: one object per line. Relative paths are relative to FILE's folder. "
                    "Exit codes: 0 all jobs succeeded, 1 a job failed or was invalid, 2 FILE is unusable, "
                    "130 interrupted.",
    )
    p.add_argument("file", metavar="FILE", help="CSV or JSONL job file")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failed (or invalid) job")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="worker processes (Ray: actors), each loading its engines once (default: config "
                        "batch.workers, 1; with --ray on GPUs: one per GPU)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip jobs whose output exists with the same recorded job hash (default: on)")
    p.add_argument("--report", metavar="REPORT.json", type=Path,
                   help="write per-job status, seconds, audio seconds and errors as JSON")
    p.add_argument("--state", metavar="PATH", type=Path,
                   help="resume state file (default: FILE.batch-state.sqlite beside FILE)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: a cluster ADDRESS (host:port), 'auto', or nothing to start a local Ray")
    p.add_argument("--dry-run", action="store_true", help="validate every job, report what would run, stop")
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    from demod_voice.batch import runner

    cfg = ctx.cfg
    settings = runner.Settings(
        workers=args.workers, resume=args.resume, fail_fast=args.fail_fast, dry_run=args.dry_run,
        report=args.report, state=args.state, ray=args.ray is not None, ray_address=args.ray or None,
        device=ctx.device, quiet=ctx.quiet, verbose=ctx.verbose,
    )
    return runner.run(args.file, cfg, settings)
