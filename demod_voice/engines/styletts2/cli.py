"""``styletts2-infer REFERENCE TEXT -o OUT``: zero-shot speech in the voice of reference audio with StyleTTS2."""

from __future__ import annotations

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
from demod_voice.errors import UsageError

#: Control flags; ranges and defaults are the schema's (``styletts2.*``), checked by the adapter.
CONTROL_FLAGS = ("alpha", "beta", "diffusion_steps", "embedding_scale")


def register(sub, common) -> None:
    p = sub.add_parser(
        "styletts2-infer", parents=[common], help="clone a voice from reference audio (StyleTTS2, English)",
        description="Speak TEXT in the voice of REFERENCE audio with StyleTTS2 (the LibriTTS checkpoint). REFERENCE "
                    "may be a file or a folder of recordings (their styles are averaged); with --reference "
                    "(repeatable) or --voice NAME the first positional argument is TEXT.",
        epilog="Exit codes: 0 success, 1 runtime failure, 2 usage or input error (bad reference, missing model, "
               "option out of range), 130 interrupted.",
    )
    p.add_argument("reference", nargs="?", metavar="REFERENCE",
                   help="reference audio (any format soundfile reads) or a folder of it")
    add_text_arguments(p)
    p.add_argument("-o", "--output", metavar="OUT", help="output file, or '-' for standard output (default: output.wav)")
    p.add_argument("--language", default=None,
                   help="en or an espeak-ng English voice such as en-gb (default: config styletts2.language)")
    p.add_argument("--reference", dest="references", action="append", default=[], metavar="AUDIO",
                   help="another reference file or folder (repeatable; the styles are averaged)")
    p.add_argument("--voice", metavar="NAME", help="use the chosen reference samples of a saved voice")
    add_format_argument(p)
    p.add_argument("--stream", action="store_true",
                   help="write raw 16-bit mono PCM (24 kHz) to standard output, sentence by sentence")
    p.add_argument("--alpha", type=setting_number("styletts2.alpha"), metavar="X",
                   help="timbre: 0 = the reference's, 1 = drawn for the text (default 0.3)")
    p.add_argument("--beta", type=setting_number("styletts2.beta"), metavar="X",
                   help="prosody: 0 = the reference's, 1 = drawn for the text (default 0.7)")
    p.add_argument("--diffusion-steps", type=setting_number("styletts2.diffusion_steps"), metavar="N",
                   help="style diffusion steps, 1-50 (default 5)")
    p.add_argument("--embedding-scale", type=setting_number("styletts2.embedding_scale"), metavar="X",
                   help="guidance on the text: higher is more expressive (default 1.0)")
    p.add_argument("--speed", type=setting_number("styletts2.speed"), metavar="X", help="speaking rate (default 1.0)")
    p.add_argument("--seed", type=setting_number("styletts2.seed"), metavar="N", help="random seed, for repeatable output")
    p.add_argument("--model-dir", metavar="DIR", help="StyleTTS2 checkpoint folder (config.yml and one .pth)")
    add_chain_arguments(p)
    add_captions_argument(p, " (Whisper aligns the text: set captions.whisper_model)")
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    from demod_voice import output, synthesis
    from demod_voice import text as text_mod
    from demod_voice.engines.rvc.cli_options import apply_aux_flags, rvc_request
    from demod_voice.engines.styletts2 import plugin as adapter
    from demod_voice.synthesis import Request

    references, text_arg = cloning_inputs(args)
    if text_arg is None and args.text_file is None:
        raise UsageError("no text given", hint="pass TEXT, '-' to read standard input, or --text-file FILE")
    cfg = ctx.cfg

    # Everything that can fail on user input is checked before the model loads.
    text = text_mod.read_text_argument(text_arg, args.text_file)
    target = output.plan_target(args.output, args.format, args.stream, cfg.get("output.format"))
    controls = {key: getattr(args, key) for key in CONTROL_FLAGS}
    request = Request(text=text, voice=args.voice or "", references=references, language=args.language,
                      speed=args.speed, seed=args.seed, stream=args.stream, model=args.model_dir,
                      options={k: v for k, v in controls.items() if v is not None}, rvc=rvc_request(args),
                      words=bool(args.captions))
    check_captions(args.captions)
    plan = adapter.options(request, cfg)
    check_chain_arguments(args)
    if request.rvc is not None:
        apply_aux_flags(args, ctx)

    started = time.perf_counter()
    chunks = synthesis.synthesize("styletts2", request, cfg, ctx.device, plan=plan)
    result = deliver_with_captions(chunks, target, args.captions)
    elapsed = time.perf_counter() - started
    if not target.to_stdout:
        ctx.say(f"wrote {target.path} ({result.duration:.1f} s of audio, {result.sample_rate} Hz, {target.fmt}) "
                f"in {elapsed:.1f} s")
    return 0
