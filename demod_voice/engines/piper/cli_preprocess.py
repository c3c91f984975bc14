"""``piper-preprocess --input-dir --output-dir --language``: prepare a Piper training set."""

from __future__ import annotations

import argparse
from pathlib import Path

from demod_voice.arguments import non_negative_float, positive_float


def _workers(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value!r}")
    return number


def _quality(value: str) -> float:
    number = non_negative_float(value)
    if number > 1:
        raise argparse.ArgumentTypeError(f"expected a score between 0 and 1, got {value!r}")
    return number


def register(sub, common) -> None:
    p = sub.add_parser(
        "piper-preprocess", parents=[common], help="prepare a dataset for Piper training",
        description="Validate, clean, score and phonemize recordings into a training set for piper1-gpl "
                    "(metadata.csv + wavs/) and the legacy piper_train (config.json + dataset.jsonl). "
                    "Re-running resumes: finished utterances are skipped.",
        epilog="Exit codes: 0 done (warnings are listed in the summary), 1 runtime failure, "
               "2 bad input (with --strict: any invalid row or too little audio), 130 interrupted.",
    )
    p.add_argument("--input-dir", required=True, metavar="DIR", help="LJSpeech-style folder or recordings")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="where the training set is written")
    p.add_argument("--language", default="en-us", help="espeak-ng voice, e.g. en-us")
    p.add_argument("--format", dest="input_format", choices=("ljspeech", "pairs", "auto"), default="auto",
                   help="input layout: ljspeech (metadata.csv + wavs/), pairs (name.wav + name.txt), "
                        "auto (ljspeech when metadata.csv exists; default)")
    p.add_argument("--sample-rate", type=int, default=22050, metavar="HZ", help="output sample rate (default 22050)")
    speakers = p.add_mutually_exclusive_group()
    speakers.add_argument("--single-speaker", dest="speakers", action="store_const", const="single",
                          help="one voice (3-column metadata is LJSpeech's id|text|normalized text)")
    speakers.add_argument("--multi-speaker", dest="speakers", action="store_const", const="multi",
                          help="several voices (metadata id|speaker|text; pairs: speaker from .meta.json or sub-folder)")
    p.set_defaults(speakers="auto")
    p.add_argument("--min-duration", type=non_negative_float, default=0.5, metavar="SEC",
                   help="drop utterances with less speech than this after trimming (default 0.5)")
    p.add_argument("--max-duration", type=positive_float, default=20.0, metavar="SEC",
                   help="drop utterances longer than this after trimming (default 20)")
    p.add_argument("--min-quality", type=_quality, default=0.4, metavar="SCORE",
                   help="drop utterances whose quality score (0-1) is below this (default 0.4)")
    p.add_argument("--workers", type=_workers, default=1, metavar="N", help="parallel worker processes (default 1)")
    p.add_argument("--transcribe", action="store_true",
                   help="fill missing transcripts with faster-whisper (model: config dataset.whisper_model, else stt.model)")
    p.add_argument("--dry-run", action="store_true", help="validate and report only; write nothing")
    p.add_argument("--strict", action="store_true",
                   help="any invalid row, or too little audio to train, is an error (exit 2) and no dataset is written")
    p.add_argument("--trainer", choices=("both", "piper1", "legacy"), default=None,
                   help="which trainer's files to write: piper1 (metadata.csv), legacy (dataset.jsonl, needs torch) "
                        "or both (default where torch is installed, else piper1)")
    p.add_argument("--voice-config", metavar="JSON",
                   help="take the phoneme id map from this voice's .onnx.json (when fine-tuning that voice)")
    p.set_defaults(func=run)


def _trainer(given: str | None, ctx) -> str:
    """The layout to write: the legacy tensors need torch, so without it the default is piper1 (said once)."""
    from demod_voice.needs import found

    if given is None:
        if found("torch"):
            return "both"
        ctx.say("notice: torch is not installed, so only the piper1 layout (metadata.csv + wavs/) is written; "
                "pass --trainer legacy after installing torch for the legacy piper_train files")
        return "piper1"
    if given in ("both", "legacy") and not found("torch"):
        from demod_voice.errors import NotAvailableError, install_hint

        raise NotAvailableError(f"--trainer {given} writes the legacy piper_train tensors, which need torch "
                                "(not installed)", hint="pass --trainer piper1, or " + install_hint("train"))
    return given


def run(args, ctx) -> int:
    from demod_voice.dataset import Options, prepare

    cfg = ctx.cfg
    if args.transcribe:
        from demod_voice.needs import require

        require("stt", "--transcribe")  # packages before the Whisper model
    trainer = _trainer(args.trainer, ctx)
    opts = Options(
        input_dir=Path(args.input_dir).expanduser(),
        output_dir=Path(args.output_dir).expanduser(),
        language=args.language,
        format=args.input_format,
        sample_rate=args.sample_rate,
        speakers=args.speakers,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        min_quality=args.min_quality,
        workers=args.workers,
        transcribe=args.transcribe,
        dry_run=args.dry_run,
        strict=args.strict,
        trainer=trainer,
        voice_config=Path(args.voice_config).expanduser() if args.voice_config else None,
        whisper_model=_whisper_folder(cfg) if args.transcribe else None,
        min_total_seconds=cfg.get("dataset.min_total_seconds"),
        quiet=ctx.quiet,
    )
    result = prepare(opts, say=ctx.say)
    print(result.summary, end="", flush=True)
    if not opts.dry_run:
        ctx.say(f"done: {result.processed} processed, {result.reused} reused from an earlier run, "
                f"{result.transcribed} transcribed; {result.report['totals']['kept']} utterances in {opts.output_dir}")
    return 0


def _whisper_folder(cfg) -> str | None:
    """``dataset.whisper_model``, else ``stt.model`` (the one Whisper the rest uses), as a folder."""
    from demod_voice.engines.whisper import engine as whisper

    name = cfg.get("dataset.whisper_model") or cfg.get("stt.model")
    return str(whisper.resolve(name, cfg)) if name else None
