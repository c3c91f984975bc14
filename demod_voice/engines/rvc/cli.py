"""``rvc-convert INPUT --model MODEL``: convert speech (a file or a folder of files) into an RVC voice."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from demod_voice.arguments import add_captions_argument, add_format_argument, check_captions
from demod_voice.engines.rvc.cli_options import add_conversion_arguments, apply_aux_flags, rvc_request
from demod_voice.errors import DemodError, EngineError, InputError, UsageError


def register(sub, common) -> None:
    p = sub.add_parser(
        "rvc-convert", parents=[common], help="convert speech into an RVC voice",
        description="Convert INPUT (an audio file, or a folder of them) into the voice of an RVC model. "
                    "Needs HuBERT (and RMVPE for the default pitch method): 'demod-voice models pull rvc-aux'.",
    )
    p.add_argument("input", metavar="INPUT", help="audio file (any format soundfile or PyAV reads) or a folder of them")
    p.add_argument("-m", "--model", required=True, metavar="MODEL",
                   help="RVC voice .pth, or a name registered with 'demod-voice rvc add'")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file, or '-' for standard output (default: output.wav); for a folder INPUT, "
                        "an output folder "
                        "(default: INPUT_rvc)")
    add_format_argument(p)
    add_conversion_arguments(p)
    add_captions_argument(p, " (one INPUT file; Whisper finds the words in INPUT: set captions.whisper_model)")
    p.add_argument("--captions-text", metavar="TEXT",
                   help="what INPUT says; its words are aligned to the audio (default: Whisper's transcript)")
    p.set_defaults(func=run)


def audio_files(folder: Path) -> list[Path]:
    """Files in ``folder`` whose suffix is a format libsndfile reads (not recursive)."""
    import soundfile as sf

    suffixes = {f".{ext.lower()}" for ext in sf.available_formats()} | {".oga", ".opus", ".mp3", ".aif"}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                  and not p.name.startswith("."))


def run(args, ctx) -> int:
    from demod_voice import audio as audio_mod

    source = Path(args.input).expanduser()
    if not source.exists():
        raise InputError(f"input not found: {source}", hint="pass an audio file or a folder of audio files")
    cfg = ctx.cfg
    default_fmt = cfg.get("output.format") or "wav"
    check_captions(args.captions)
    if args.captions_text and not args.captions:
        raise UsageError("--captions-text needs --captions FILE")
    if source.is_dir():
        if args.captions:
            raise UsageError("--captions works on one INPUT file, not a folder")
        files = audio_files(source)
        if not files:
            raise InputError(f"no audio files in {source}", hint="put .wav/.flac/.ogg/.mp3 files in it")
        out_dir = Path(args.output).expanduser() if args.output else source.with_name(source.name + "_rvc")
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"--output {out_dir} is a file, but INPUT is a folder", hint="give a folder for --output")
        if out_dir.resolve() == source.resolve():
            raise UsageError("--output is the input folder; converted files would replace the originals",
                             hint="choose another output folder")
        fmt = audio_mod.format_for(None, args.format, default_fmt)
        if fmt == "pcm":
            raise UsageError("raw pcm output carries no sample rate; choose wav, flac, ogg, opus, mp3 or aac")
        out_dir.mkdir(parents=True, exist_ok=True)
        audio_mod.check_writable_dir(out_dir / f"x.{fmt}")
        return _convert_folder(args, ctx, files, out_dir, fmt)
    to_stdout = args.output == "-"
    target = Path(args.output or f"output.{default_fmt}").expanduser()
    fmt = audio_mod.format_for(None if to_stdout else target, args.format, default_fmt)
    if not to_stdout:
        audio_mod.check_writable_dir(target)
    speech = audio_mod.read(source, what="input audio")
    started = time.perf_counter()
    if args.captions:  # words of the clean input; conversion keeps the time axis, so they hold for the output
        from demod_voice.alignment import words_of_speech

        speech.words = words_of_speech(speech, args.captions_text, cfg)
    result = _converter(args, ctx)(speech)
    audio_mod.write(result, "-" if to_stdout else target, fmt)
    if args.captions:
        from demod_voice import captions

        captions.write(args.captions, captions.carry(speech, result).words)
    if to_stdout:
        return 0
    ctx.say(f"wrote {target} ({result.duration:.1f} s, {result.sample_rate} Hz, {fmt}) in "
            f"{time.perf_counter() - started:.1f} s")
    return 0


def _convert_folder(args, ctx, files: list[Path], out_dir: Path, fmt: str) -> int:
    from demod_voice import audio as audio_mod
    from demod_voice import progress

    convert = _converter(args, ctx)
    failures: list[str] = []
    suffix = {"ogg": ".ogg", "opus": ".opus", "mp3": ".mp3", "aac": ".aac", "flac": ".flac"}.get(fmt, ".wav")
    started = time.perf_counter()
    bar = progress.bar(len(files), desc="converting", unit="file", quiet=ctx.quiet)  # terminal only
    for path in files:
        bar.set_postfix_str(path.name[:30])
        try:
            result = convert(audio_mod.read(path, what="input audio"))
            audio_mod.write(result, out_dir / (path.stem + suffix), fmt)
        except (InputError, EngineError) as exc:  # one bad file does not stop the others
            failures.append(f"{path.name}: {exc.message}")
            bar.write(f"notice: skipped {path.name}: {exc.message}", file=sys.stderr)
        bar.update(1)
    bar.close()
    done = len(files) - len(failures)
    ctx.say(f"converted {done} of {len(files)} files into {out_dir} in {time.perf_counter() - started:.1f} s")
    if failures:
        raise DemodError(f"{len(failures)} of {len(files)} files failed ({failures[0]})",
                         hint="the other files were written; fix or remove the failed ones and run again",
                         exit_code=2 if done == 0 else 1)
    return 0


def _converter(args, ctx):
    """The flags as one validated conversion, through the RVC adapter (the same one batch and the server use)."""
    from demod_voice.engines.rvc import plugin as rvc_adapter

    apply_aux_flags(args, ctx)
    request = rvc_request(args, prefix="", model=args.model)
    values = rvc_adapter.options(request, ctx.cfg)
    engine = rvc_adapter.load(request, ctx.cfg, ctx.device)
    conditioning = engine.condition(None)
    return lambda speech: engine.convert(speech, conditioning, values)
