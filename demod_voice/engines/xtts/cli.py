"""``xtts-zero-shot REFERENCE TEXT --output --language``: voice cloning with XTTS-v2."""

from __future__ import annotations

import argparse
import time

from demod_voice.arguments import (
    add_captions_argument,
    add_format_argument,
    add_text_arguments,
    check_captions,
    cloning_inputs,
    deliver_with_captions,
    setting_number,
)
from demod_voice.engines.rvc.cli_options import add_chain_arguments, check_chain_arguments
from demod_voice.engines.xtts import habits as coqui_habits
from demod_voice.errors import UsageError


def register(sub, common) -> None:
    p = sub.add_parser(
        "xtts-zero-shot", parents=[common], help="clone a voice from reference audio (XTTS-v2)",
        description="Speak TEXT in the voice of REFERENCE audio with XTTS-v2. REFERENCE may be a file or a folder "
                    "of recordings; with --reference (repeatable) or --voice NAME the first positional argument "
                    "is TEXT.",
        epilog="Exit codes: 0 success, 1 runtime failure, 2 usage or input error (bad reference, unknown language, "
               "missing model), 130 interrupted. coqui tts's --speaker_wav, --language_idx and --out_path work too.",
    )
    p.add_argument("reference", nargs="?", metavar="REFERENCE",
                   help="reference audio (any format soundfile reads) or a folder of it")
    add_text_arguments(p)
    p.add_argument("-o", "--output", "--out_path", dest="output", metavar="OUT",
                   help="output file, or '-' for standard output (default: output.wav)")
    p.add_argument("--language", "--language_idx", dest="language", default=None,
                   help="language code, e.g. en (default: config xtts.language)")
    p.add_argument("--reference", "--speaker_wav", dest="references", action="append", default=[], metavar="AUDIO",
                   help="another reference file or folder (repeatable; all are used together)")
    p.add_argument("--voice", metavar="NAME",
                   help="use a saved voice (--save-voice, 'voices add', the server; no reference audio needed)")
    p.add_argument("--save-voice", metavar="NAME",
                   help="save the reference as a voice profile NAME, usable everywhere (voices list)")
    add_format_argument(p)
    p.add_argument("--stream", action="store_true",
                   help="write raw 16-bit mono PCM (24 kHz) to standard output, chunk by chunk as it is generated")
    p.add_argument("--split-sentences", action=argparse.BooleanOptionalAction, default=True,
                   help="synthesise sentence by sentence (default: on)")
    p.add_argument("--temperature", type=setting_number("xtts.temperature"), metavar="X", help="sampling temperature (default 0.75)")
    p.add_argument("--top-k", type=setting_number("xtts.top_k"), metavar="N", help="top-k sampling (default 50)")
    p.add_argument("--top-p", type=setting_number("xtts.top_p"), metavar="X", help="nucleus sampling (default 0.85)")
    p.add_argument("--repetition-penalty", type=setting_number("xtts.repetition_penalty"), metavar="X", help="repetition penalty (default 10)")
    p.add_argument("--length-penalty", type=setting_number("xtts.length_penalty"), metavar="X", help="length penalty (default 1)")
    p.add_argument("--speed", type=setting_number("xtts.speed"), metavar="X", help="speaking rate (default 1.0)")
    p.add_argument("--seed", type=setting_number("xtts.seed"), metavar="N", help="random seed, for repeatable output")
    p.add_argument("--model-dir", metavar="DIR", help="XTTS checkpoint folder (config.json, model.pth, vocab.json)")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), help="GPU precision (default: config; CPU is fp32)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the conditioning-latents cache")
    add_chain_arguments(p)
    add_captions_argument(p, " (Whisper aligns the text: set captions.whisper_model)")
    coqui_habits.add_arguments(p)
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    from demod_voice import output, synthesis
    from demod_voice import text as text_mod
    from demod_voice.engines.rvc.cli_options import apply_aux_flags, rvc_request
    from demod_voice.engines.xtts import plugin as xtts_adapter
    from demod_voice.needs import require
    from demod_voice.synthesis import Request

    coqui_habits.apply(args)
    require("xtts", "XTTS")  # packages before weights
    references, text_arg = cloning_inputs(args)
    if args.save_voice and args.voice:
        raise UsageError("--save-voice saves a voice made from reference audio; --voice already names a saved one")
    if args.precision:
        ctx.flags["xtts.precision"] = args.precision
    if args.no_cache:
        ctx.flags["xtts.latents_cache"] = False
    cfg = ctx.cfg
    if args.save_voice:
        from demod_voice.voices import check_saveable

        check_saveable(cfg, args.save_voice)
    speak = text_arg is not None or args.text_file is not None
    if not speak and not args.save_voice:
        raise UsageError("no text given", hint="pass TEXT, '-' to read standard input, or --text-file FILE")

    # Everything that can fail on user input is checked before the model loads.
    text = text_mod.read_text_argument(text_arg, args.text_file) if speak else ""
    target = output.plan_target(args.output, args.format, args.stream, cfg.get("output.format")) if speak else None
    sampling = {key: getattr(args, key) for key in SAMPLING_FLAGS}
    request = Request(text=text, voice=args.voice or "", references=references, language=args.language,
                      speed=args.speed, seed=args.seed, stream=args.stream, model=args.model_dir,
                      options={k: v for k, v in sampling.items() if v is not None}, rvc=rvc_request(args),
                      words=bool(args.captions) and speak)
    check_captions(args.captions if speak else None)
    plan = xtts_adapter.options(request, cfg, need_text=speak)
    check_chain_arguments(args)
    if request.rvc is not None:
        apply_aux_flags(args, ctx)

    started = time.perf_counter()
    if args.save_voice:
        from demod_voice import voices

        engine = xtts_adapter.engine_for(plan, cfg, ctx.device)
        latents = xtts_adapter.latents(plan, engine)
        store = voices.store_for(cfg)
        profile = voices.save_from_references(store, args.save_voice, plan.conditioning.files,
                                              plan.language or args.language or cfg.get("xtts.language"))
        latents.save(profile.saved_latents, {"voice": args.save_voice})
        ctx.say(f"saved voice '{args.save_voice}' ({len(profile.reference)} sample(s)) in {profile.path}; "
                "use it with --voice, in batch 'voice' and over HTTP")
    if not speak:
        return 0
    if not args.split_sentences:
        request.split_sentences = False
    chunks = synthesis.synthesize("xtts", request, cfg, ctx.device, plan=plan)
    if not request.stream:  # a bar per sentence on a terminal, once the work takes a few seconds
        from demod_voice import progress

        sentences = len(text_mod.split_sentences(text)) if request.split_sentences else 1
        chunks = progress.iterate(chunks, sentences, desc="xtts", unit="sentence", quiet=ctx.quiet)
    result = deliver_with_captions(chunks, target, args.captions)
    elapsed = time.perf_counter() - started
    if not target.to_stdout:
        ctx.say(f"wrote {target.path} ({result.duration:.1f} s of audio, {result.sample_rate} Hz, {target.fmt}) "
                f"in {elapsed:.1f} s")
    return 0


#: Sampling flags; their ranges and defaults are the schema's (``xtts.*``), checked by the adapter.
SAMPLING_FLAGS = ("temperature", "top_k", "top_p", "repetition_penalty", "length_penalty")
