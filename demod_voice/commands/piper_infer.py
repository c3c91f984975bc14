"""``piper-infer MODEL TEXT --output --speaker``: fast neural TTS with Piper."""

from __future__ import annotations

import time

from demod_voice.commands._common import (
    add_captions_argument,
    add_format_argument,
    add_text_arguments,
    non_negative_float,
    positive_float,
)
from demod_voice.commands._rvc import add_chain_arguments, check_chain_arguments
from demod_voice.errors import UsageError


def register(sub, common) -> None:
    p = sub.add_parser(
        "piper-infer", parents=[common], help="synthesise speech with a Piper voice",
        description="Synthesise TEXT with a Piper voice (a .onnx path or a voice name from 'voices list').",
    )
    p.add_argument("model", metavar="MODEL", help="Piper .onnx file or voice name, e.g. en_US-joe-medium")
    add_text_arguments(p)
    p.add_argument("-o", "--output", metavar="OUT", help="output file, or '-' for standard output (default: output.wav)")
    p.add_argument("--speaker", metavar="ID", help="speaker index or name (multi-speaker voices)")
    add_format_argument(p)
    p.add_argument("--stream", action="store_true",
                   help="write raw 16-bit mono PCM to standard output, sentence by sentence")
    p.add_argument("--length-scale", type=positive_float, metavar="X", help="phoneme length (>1 slower)")
    p.add_argument("--speed", type=positive_float, metavar="X", help="speaking rate (the inverse of --length-scale)")
    p.add_argument("--noise-scale", type=non_negative_float, metavar="X", help="generator noise (0 = deterministic)")
    p.add_argument("--noise-w", type=non_negative_float, metavar="X", help="phoneme width noise (0 = deterministic)")
    p.add_argument("--sentence-silence", type=non_negative_float, metavar="SEC", help="silence after each sentence")
    p.add_argument("--volume", type=non_negative_float, metavar="X", help="volume multiplier (default 1.0)")
    p.add_argument("--backend", choices=("onnxruntime", "tinygrad"),
                   help="what runs the voice: onnxruntime (default) or the experimental tinygrad backend")
    add_chain_arguments(p)
    add_captions_argument(p)
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    from demod_voice import audio as audio_mod
    from demod_voice import catalog, output
    from demod_voice import text as text_mod
    from demod_voice.cache import AudioCache, make_key
    from demod_voice.commands._common import check_captions, deliver_with_captions
    from demod_voice.engines import piper
    from demod_voice.router import file_version

    check_chain_arguments(args)
    check_captions(args.captions)
    if args.speed is not None and args.length_scale is not None:
        raise UsageError("--speed and --length-scale set the same thing; give only one")
    length_scale = 1.0 / args.speed if args.speed is not None else args.length_scale
    for key, value in (("piper.length_scale", length_scale), ("piper.noise_scale", args.noise_scale),
                       ("piper.noise_w", args.noise_w), ("piper.sentence_silence", args.sentence_silence),
                       ("piper.volume", args.volume), ("piper.backend", args.backend)):
        if value is not None:
            ctx.flags[key] = value
    cfg = ctx.cfg
    text = text_mod.read_text_argument(args.text, args.text_file)
    target = output.plan_target(args.output, args.format, args.stream, cfg.get("output.format"))
    model_path = catalog.resolve_piper_model(args.model, cfg)

    started = time.perf_counter()

    def prepare():
        engine = piper.load(model_path, ctx.device, backend=cfg.get("piper.backend"))
        return engine, piper.PiperOptions(
            speaker_id=engine.speaker_id(args.speaker),
            length_scale=cfg.get("piper.length_scale"),
            noise_scale=cfg.get("piper.noise_scale"),
            noise_w=cfg.get("piper.noise_w"),
            volume=cfg.get("piper.volume"),
            sentence_silence=cfg.get("piper.sentence_silence"),
        )

    # The audio cache (cache.enabled): a hit needs no engine at all.
    # (Not with --rvc: the conversion's own settings are not part of the key.)
    cache = None if target.stream or args.rvc or args.captions else AudioCache.from_config(cfg)
    if cache is not None:
        settings = {k: cfg.get(f"piper.{k}") for k in ("length_scale", "noise_scale", "noise_w", "volume", "sentence_silence")}
        key = make_key(text, command="piper-infer", model=file_version(model_path), speaker=args.speaker,
                       backend=cfg.get("piper.backend"),
                       settings=settings, fmt=target.fmt)

        def compute():
            engine, options = prepare()
            return audio_mod.encode(engine.synthesize_all(text, options), target.fmt), {}

        entry, hit = cache.get_or_compute(key, compute, tag=f"piper/{model_path.stem}")
        output.deliver_bytes(entry.data, target)
        if not target.to_stdout:
            ctx.say(f"wrote {target.path} ({'from the audio cache' if hit else 'and cached it'}) "
                    f"in {time.perf_counter() - started:.1f} s")
        return 0
    engine, options = prepare()
    chunks = engine.synthesize(text, options, words=bool(args.captions))
    if args.rvc:
        from demod_voice.commands._rvc import chain

        chunks = chain(chunks, args, ctx, stream=target.stream)
    result = deliver_with_captions(chunks, target, args.captions)
    elapsed = time.perf_counter() - started
    if not target.to_stdout:
        ctx.say(f"wrote {target.path} ({result.duration:.1f} s of audio, {result.sample_rate} Hz, {target.fmt}) "
                f"in {elapsed:.1f} s")
    return 0
