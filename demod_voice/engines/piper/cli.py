"""``piper-infer MODEL TEXT --output --speaker``: fast neural TTS with Piper."""

from __future__ import annotations

import argparse
import time

from demod_voice.arguments import (
    add_captions_argument,
    add_format_argument,
    add_text_arguments,
    check_captions,
    deliver_with_captions,
    positive_float,
    setting_number,
)
from demod_voice.engines.piper import habits as piper_habits
from demod_voice.engines.rvc.cli_options import add_chain_arguments, apply_aux_flags, check_chain_arguments
from demod_voice.errors import UsageError


def register(sub, common) -> None:
    p = sub.add_parser(
        "piper-infer", parents=[common], help="synthesise speech with a Piper voice",
        description="Synthesise TEXT with a Piper voice (a .onnx path or a voice name from 'voices list'). "
                    "Without TEXT, the text is read from standard input when it is not a terminal.",
        epilog="piper-tts's own flags work too: -m/--model, -s/--speaker, -f/--output-file (-f - for WAV on standard "
               "output), -d/--output-dir, -i/--input-file, -c, --output-raw, --length_scale, --noise_scale, "
               "--noise_w_scale, --sentence_silence, --volume, --data-dir, --no-normalize, --json-input, --debug, "
               "--cuda (underscore or dash spellings).",
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="Piper .onnx file or voice name, e.g. en_US-joe-medium")
    add_text_arguments(p)
    p.add_argument("-m", "--model", dest="model_flag", metavar="MODEL",
                   help="the voice as an option (piper's -m); then the first positional argument is TEXT")
    p.add_argument("-o", "--output", "-f", "--output-file", "--output_file", dest="output", metavar="OUT",
                   help="output file, or '-' for standard output (default: output.wav)")
    p.add_argument("-s", "--speaker", metavar="ID",
                   help="speaker index or name (multi-speaker voices; 0 on a one-speaker voice is its only speaker)")
    add_format_argument(p)
    p.add_argument("--stream", "--output-raw", "--output_raw", dest="stream", action="store_true",
                   help="write raw 16-bit mono PCM to standard output, sentence by sentence")
    p.add_argument("--length-scale", "--length_scale", type=setting_number("piper.length_scale"), metavar="X", help="piper's phoneme length (>1 slower; the model does not follow it linearly)")
    p.add_argument("--speed", type=positive_float, metavar="X", help="playback rate, pitch kept (2 = twice as fast, exactly; the speech is time-stretched)")
    p.add_argument("--noise-scale", "--noise_scale", type=setting_number("piper.noise_scale"), metavar="X", help="generator noise (0 = deterministic)")
    p.add_argument("--noise-w", "--noise-w-scale", "--noise_w_scale", "--noise_w", dest="noise_w", type=setting_number("piper.noise_w"), metavar="X", help="phoneme width noise (0 = deterministic)")
    p.add_argument("--sentence-silence", "--sentence_silence", type=setting_number("piper.sentence_silence"), metavar="SEC", help="silence between sentences")
    p.add_argument("--volume", type=setting_number("piper.volume"), metavar="X", help="volume multiplier (default 1.0)")
    p.add_argument("--backend", choices=("onnxruntime", "tinygrad"),
                   help="what runs the voice: onnxruntime (default) or the experimental tinygrad backend")
    p.add_argument("--cuda", dest="device", action="store_const", const="gpu", default=argparse.SUPPRESS,
                   help="same as the global --gpu (piper's flag)")
    add_chain_arguments(p)
    add_captions_argument(p)
    piper_habits.add_arguments(p)
    p.set_defaults(func=run)


def sort_positionals(args) -> None:
    """piper's ``-m MODEL``: the positionals then hold only TEXT; check one voice was named."""
    if args.model_flag is not None:
        if args.text is not None:
            raise UsageError("with -m/--model, give at most one positional argument (the text)")
        args.model, args.text = args.model_flag, args.model
    if not args.model:
        raise UsageError("no voice given", hint="pass MODEL (a voice name or .onnx file) or -m MODEL")


def read_text(args) -> str:
    """TEXT, '-', --text-file, or (piper's habit) standard input when none is given and it is not a terminal."""
    import io
    import sys

    from demod_voice import text as text_mod

    if args.text is None and args.text_file is None:
        stdin = sys.stdin
        if stdin is None or stdin.isatty():
            raise UsageError("no text given", hint="pass TEXT, pipe the text in, or use --text-file FILE")
        raw = stdin.buffer.read()
        if not raw.strip():
            raise UsageError("no text given", hint="pass TEXT, pipe the text in, or use --text-file FILE")
        return text_mod.read_text_argument("-", None, stdin=io.BytesIO(raw))
    return text_mod.read_text_argument(args.text, args.text_file)


def request_from_args(args, text: str):
    """The parsed flags as an engine-layer ``Request`` (the adapter validates them against the schema)."""
    from demod_voice.engines.rvc.cli_options import rvc_request
    from demod_voice.synthesis import Request

    given = {"length_scale": args.length_scale, "noise_scale": args.noise_scale, "noise_w": args.noise_w,
             "sentence_silence": args.sentence_silence, "volume": args.volume}
    return Request(text=text, voice=args.model, speaker=args.speaker, speed=args.speed, backend=args.backend,
                   options={k: v for k, v in given.items() if v is not None}, rvc=rvc_request(args))


def run(args, ctx) -> int:
    from demod_voice import audio as audio_mod
    from demod_voice import output, progress, synthesis
    from demod_voice.cache import AudioCache
    from demod_voice.engines.piper import plugin as piper_adapter
    from demod_voice.synthesis import keys

    sort_positionals(args)
    check_chain_arguments(args)
    check_captions(args.captions)
    cfg = ctx.cfg
    piper_habits.apply(args, ctx)
    if piper_habits.per_line(args):
        return _per_line(args, ctx, piper_habits.raw_lines(args))
    text = read_text(args)
    target = output.plan_target(args.output, args.format, args.stream, cfg.get("output.format"))
    request = request_from_args(args, text)
    request.words = bool(args.captions)
    plan = piper_adapter.options(request, cfg)  # every input error before any engine loads

    started = time.perf_counter()
    # The audio cache (cache.enabled): a hit needs no engine at all.
    # (Not with --rvc: the conversion's own settings are not part of the key.)
    sentences = len(piper_adapter.split_pieces(text))

    def with_bar(chunks):  # a bar per sentence on a terminal, once the work takes a few seconds
        return progress.iterate(chunks, sentences, desc="piper", unit="sentence", quiet=ctx.quiet)

    cache = None if target.stream or args.rvc or args.captions else AudioCache.from_config(cfg)
    if cache is not None:
        # the one key (synthesis.keys): a batch job or the server with the same request finds this entry
        key = keys.audio_key("piper", request, cfg, fmt=target.fmt, plan=plan)

        def compute():
            whole = audio_mod.concat(list(with_bar(piper_adapter.synthesize(request, cfg, ctx.device, plan=plan))))
            return audio_mod.encode(whole, target.fmt), keys.entry_meta("piper", target.fmt, whole.sample_rate, whole.duration)

        entry, hit = cache.get_or_compute(key, compute, tag=keys.tag_for("piper", plan))
        output.deliver_bytes(entry.data, target)
        if not target.to_stdout:
            ctx.say(f"wrote {target.path} ({'from the audio cache' if hit else 'and cached it'}) "
                    f"in {time.perf_counter() - started:.1f} s")
        return 0
    if args.rvc:
        apply_aux_flags(args, ctx)
    chunks = with_bar(synthesis.synthesize("piper", request, cfg, ctx.device))
    result = deliver_with_captions(chunks, target, args.captions)
    elapsed = time.perf_counter() - started
    if not target.to_stdout:
        ctx.say(f"wrote {target.path} ({result.duration:.1f} s of audio, {result.sample_rate} Hz, {target.fmt}) "
                f"in {elapsed:.1f} s")
    return 0


def _per_line(args, ctx, text: str) -> int:
    """piper's --output-dir / --json-input: each input line into its own file (lines that name no file, with
    --json-input and -o, are spoken together into that one)."""
    import copy

    together = []
    for line, speaker, out in piper_habits.line_jobs(args, text):
        if out is None:
            together.append(line)
            continue
        one = copy.copy(args)
        one.text, one.text_file, one.speaker, one.output = line, None, speaker, out
        one.output_dir, one.json_input, one.model_flag = None, False, None
        run(one, ctx)
        if ctx.quiet is False and getattr(args, "output_dir", None):
            print(out)  # piper prints each file it writes
    if together:
        rest = copy.copy(args)
        rest.text, rest.text_file, rest.output_dir, rest.json_input = "\n".join(together), None, None, False
        rest.model_flag = None
        run(rest, ctx)
    return 0
