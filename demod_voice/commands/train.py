"""``train readiness`` and ``train piper``: from collected samples to a trained voice (docs/training.md)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from demod_voice.errors import EXIT_INTERRUPTED, DemodError, EngineError, InputError

_USER = dict(metavar="USER", default="local",
             help="whose profile and voice (default: local, the CLI's own user; others' voices are theirs only)")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value!r}")
    return number


def register(sub, common) -> None:
    p = sub.add_parser("train", parents=[common], help="check training data and train voices",
                       description="Check whether recordings are enough to train a voice, and train a Piper voice "
                                   "from a piper-preprocess dataset or a profile's samples (docs/training.md).")
    tsub = p.add_subparsers(dest="train_command", metavar="ACTION")
    p.set_defaults(func=lambda args, ctx: _no_action(p))

    r = tsub.add_parser("readiness", parents=[common], help="are the samples enough to train?",
                        description="Sample count, seconds, quality, and whether they are enough for an engine. "
                                    "Exits 0 whether or not they are ready (2 on bad input).")
    _source(r)
    r.add_argument("--engine", choices=("piper", "gpt-sovits", "rvc"), default="piper",
                   help="the engine to train (default piper); gpt-sovits names the best 5-10 s reference")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.add_argument("--user", **_USER)
    r.set_defaults(func=run_readiness)

    t = tsub.add_parser("piper", parents=[common], help="train (fine-tune) a Piper voice",
                        description="Train a Piper voice with piper-tts's trainer, export it to ONNX and register it "
                                    "under --voice, so every command and the server speak it by name.",
                        epilog="Exit codes: 0 trained, 1 training failed, 2 bad input or data not ready, "
                               "130 interrupted (last.ckpt is saved; continue with --resume).")
    _source(t)
    t.add_argument("--voice", required=True, metavar="NAME", help="name of the trained voice")
    t.add_argument("--warmstart", metavar="CKPT",
                   help="fine-tune from a Piper .ckpt (matching weights are copied; loaded weights-only)")
    t.add_argument("--max-steps", type=_positive, metavar="N", help="stop after N training steps (batches)")
    t.add_argument("--max-epochs", type=_positive, metavar="N", help="stop after N epochs (default 1000)")
    t.add_argument("--batch-size", type=_positive, metavar="N", help="utterances per step (config training.batch_size)")
    t.add_argument("--resume", action="store_true", help="continue from the voice's last.ckpt (no warm start)")
    t.add_argument("--accelerator", choices=("auto", "cpu", "gpu"), help="config training.accelerator")
    t.add_argument("--arch", choices=("medium", "small"), default="medium",
                   help="model size: medium (published Piper voices; default) or small (smoke tests only)")
    t.add_argument("--force", action="store_true", help="train even when 'train readiness' says not ready")
    t.add_argument("--user", **_USER)
    t.set_defaults(func=run_piper)


def _source(p) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--profile", metavar="NAME", help="a voice profile's collected samples")
    group.add_argument("--dataset", metavar="DIR", help="a piper-preprocess output folder")


def _no_action(parser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_readiness(args, ctx) -> int:
    from demod_voice.training import readiness

    report = readiness.check(ctx.cfg, args.engine, profile=args.profile, dataset=args.dataset, user=args.user)
    print(json.dumps(report, indent=2) if args.json else readiness.render(report), end="\n" if args.json else "")
    return 0


def run_piper(args, ctx) -> int:
    from demod_voice.training import jobs

    jobs.require_trainer()  # before any data or weights work (the demo environment has no torch)
    from demod_voice.training import readiness, store

    cfg = ctx.cfg
    user = args.user
    spec = jobs.Spec(user=user, voice=args.voice, profile=args.profile,
                     dataset=str(_dataset(args.dataset)) if args.dataset else None, arch=args.arch,
                     batch_size=args.batch_size or cfg.get("training.batch_size"), max_steps=args.max_steps,
                     max_epochs=args.max_epochs, accelerator=args.accelerator or cfg.get("training.accelerator"),
                     checkpoint_every=cfg.get("training.checkpoint_every"), resume=args.resume, force=args.force,
                     warmstart=str(_file(args.warmstart, "--warmstart")) if args.warmstart else None,
                     config=getattr(args, "config", None))
    spec.check()
    last = store.voice_dir(cfg, user, args.voice) / "checkpoints" / "last.ckpt"
    if args.resume and not last.is_file():
        raise InputError(f"nothing to resume for voice '{args.voice}': {last} does not exist",
                         hint="train without --resume first")
    if args.resume and args.warmstart:
        ctx.say("notice: --resume continues from last.ckpt; --warmstart is ignored")
        spec.warmstart = None
    if spec.warmstart:
        from demod_voice.training import piper

        piper.load_checkpoint(spec.warmstart, "warm-start checkpoint")  # refuse an unsafe file before any work
    report = readiness.check(cfg, "piper", profile=args.profile, dataset=args.dataset, user=user)
    if not report["ready"] and not args.force:
        raise InputError(f"not ready to train: {report['good_seconds']:g} s of good audio, "
                         f"{report['needed_seconds']:g} s needed",
                         hint="record more (see 'demod-voice train readiness'), or pass --force to train anyway")
    if not report["ready"]:
        ctx.say(f"notice: training on {report['good_seconds']:g} s of good audio (--force; "
                f"{report['needed_seconds']:g} s recommended)")
    job = jobs.create(cfg, spec)
    return follow(job, ctx, cfg)


def _dataset(path: str):
    from pathlib import Path

    folder = Path(path).expanduser().resolve()
    if not (folder / "metadata.csv").is_file():
        raise InputError(f"{folder} is not a piper-preprocess dataset (no metadata.csv)",
                         hint="prepare it with 'demod-voice piper-preprocess --output-dir DIR ...'")
    return folder


def _file(path: str, flag: str):
    from pathlib import Path

    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise InputError(f"{flag} file not found: {file}", hint="check the path")
    return file


def follow(job, ctx, cfg) -> int:
    """Run ``job``'s worker and show its progress until it ends; Ctrl-C asks it to stop after a checkpoint."""
    from demod_voice import progress
    from demod_voice.training import jobs

    proc = jobs.start(job)
    spec = job.spec()
    bar = progress.bar(spec.max_steps, desc=f"training {spec.voice}", unit="step", delay=0)
    if not _is_bar(bar):  # off a terminal the step records below (training.progress_every_s) are the progress
        bar.close()
        bar = None
    every = cfg.get("training.progress_every_s")
    seen, last_line, interrupted = 0, 0.0, False
    # off a terminal a line at least every 'every' seconds, even while one step (or the start) takes longer
    latest: dict = {}
    said = started = time.monotonic()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            try:
                done = proc.poll() is not None
                records = job.records()
                for entry in records[seen:]:
                    shown = _show(entry, bar, ctx, every, last_line, final=False)
                    printed = entry.get("event") in ("resume", "warmstart") or (
                        entry.get("event") == "phase" and entry.get("phase") != "training")
                    said = time.monotonic() if printed else max(said, shown)
                    last_line = shown
                    if "step" in entry or entry.get("event") == "phase":
                        latest.update(entry)
                seen = len(records)
                now = time.monotonic()
                if bar is None and every > 0 and now - said >= every and not done:
                    ctx.say(_waiting(spec, latest, now - started))
                    said = now
                if done:
                    break
                time.sleep(0.5)
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    ctx.say("stopping after the current step (the checkpoint is being saved)...")
                    jobs.cancel(job)
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
    steps = [r for r in job.records() if "step" in r and "event" not in r]
    if steps and bar is None and last_line == 0.0:
        _show(steps[-1], None, ctx, 0, 0.0, final=True)  # a run shorter than one record interval
    status = job.status()
    state = status.get("status")
    if state == "succeeded":
        ctx.say(f"trained voice '{spec.voice}': {status.get('model')} (speak it with: demod-voice piper-infer "
                f"{spec.voice} ...)")
        print(status.get("model"))
        return 0
    if state == "cancelled" or interrupted:
        ctx.say(f"stopped at step {status.get('step', '?')}; continue with --resume")
        return EXIT_INTERRUPTED
    error = status.get("error") or f"the trainer exited with code {proc.returncode}"
    if status.get("exit_code"):
        raise DemodError(error, hint=status.get("hint"), exit_code=status["exit_code"])
    raise EngineError(error, hint=status.get("hint") or f"see {job.folder / 'log.txt'}")


def _waiting(spec, latest: dict, elapsed: float) -> str:
    """The record written while no step has finished for a while: where the run is and for how long."""
    if "step" not in latest:
        return f"training {spec.voice}: {latest.get('phase', 'starting')}, {_span(elapsed)}"
    return (f"training {spec.voice}: step {latest['step']}/{spec.max_steps} done, working on the next, "
            f"{_span(elapsed)}")


def _is_bar(bar) -> bool:
    """A tqdm bar being drawn on a terminal (not ``-q``, not the one-line records used off a terminal)."""
    from tqdm import tqdm

    return isinstance(bar, tqdm) and not bar.disable


def _show(entry: dict, bar, ctx, every: float, last_line: float, final: bool) -> float:
    """One progress record: the bar on a terminal, else a line every ``every`` seconds (events always)."""
    if entry.get("event") == "resume":
        ctx.say(f"resuming from step {entry['step']}")
        if bar is not None:
            bar.n = entry["step"]
        return last_line
    if entry.get("event") == "warmstart":
        ctx.say(f"warm start: {entry['copied']} weights copied ({entry['skipped']} not matching)")
        return last_line
    if entry.get("event") == "phase":
        if entry["phase"] != "training":
            ctx.say(f"{entry['phase']}...")
        return last_line
    if "step" not in entry:
        return last_line
    loss = f"{entry['loss']:.4g}" if isinstance(entry.get("loss"), (int, float)) else "nan"
    eta = entry.get("eta_s")
    if bar is not None:
        bar.n = entry["step"]
        bar.set_postfix_str(f"epoch {entry['epoch']} loss {loss}" + (f" eta {_span(eta)}" if eta is not None else ""),
                            refresh=True)
        return last_line
    now = time.monotonic()
    if final or now - last_line >= every or entry.get("eta_s") == 0:
        total = entry.get("total_steps")
        ctx.say(f"step {entry['step']}{'/' + str(total) if total else ''} epoch {entry['epoch']} loss {loss}"
                + (f" eta {_span(eta)}" if eta is not None else ""))
        return now
    return last_line


def _span(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m{seconds % 60:02d}s" if seconds < 7200 \
        else f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
