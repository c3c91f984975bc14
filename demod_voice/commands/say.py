"""``say TEXT [--voice V] [--engine E | --tier T]``: speak through the router, as the server would.

The one command that names no engine: the voice, engine chain, tiers and fallback are the router's (the same
policy as ``/v1/audio/speech`` and Wyoming), so every engine in the registry -- GPT-SoVITS through its
server, a ``router.remotes`` entry -- is reachable from the command line.
"""

from __future__ import annotations

import sys
import time

from demod_voice.arguments import add_format_argument, add_text_arguments, positive_float


def register(sub, common) -> None:
    p = sub.add_parser("say", parents=[common], help="speak TEXT through the router (any engine, with fallback)",
                       description="Resolve the voice (saved profile, installed voice, OpenAI name) and speak TEXT "
                                   "with its engine chain, like the server: --engine puts one engine first, --tier "
                                   "uses router.tiers, and failed engines fall back (audited).")
    add_text_arguments(p)
    p.add_argument("--voice", default="", help="a saved voice, an installed voice or an OpenAI voice name "
                                               "(default piper.default_voice)")
    p.add_argument("--engine", help="try this engine first (a registry engine or a router.remotes name)")
    p.add_argument("--tier", help="a quality tier of router.tiers (highest, high, medium, fast)")
    p.add_argument("--no-fallback", action="store_true", help="use only the first engine of the chain")
    p.add_argument("--allow-other-voice", action="store_true", default=None,
                   help="when a saved voice's engine cannot speak it, answer in another engine's voice instead of "
                        "failing (config router.allow_other_voice)")
    p.add_argument("--language", help="language code for engines that take one")
    p.add_argument("--speed", type=positive_float, metavar="X", help="speaking rate (1 = the voice's own)")
    p.add_argument("-o", "--output", metavar="OUT", help="output file, or '-' for standard output (default: output.wav)")
    add_format_argument(p)
    p.set_defaults(func=run)


def run(args, ctx) -> int:
    from demod_voice import output
    from demod_voice import text as text_mod
    from demod_voice.errors import UsageError
    from demod_voice.server.router import Router, TTSRequest

    if args.engine and args.tier:
        raise UsageError("give --engine or --tier, not both")
    cfg = ctx.cfg
    text = text_mod.read_text_argument(args.text, args.text_file)
    target = output.plan_target(args.output, args.format, False, cfg.get("output.format"))
    router = Router(cfg)
    request = TTSRequest(text=text, voice=args.voice, engine=args.engine, tier=args.tier, fallback=not args.no_fallback,
                         speed=args.speed, language=args.language, allow_other_voice=args.allow_other_voice)
    started = time.perf_counter()
    plan = router.plan(request)
    engine, chunks = router.run(plan)
    speaker = next((c.speaker for c in plan.candidates if c.engine == engine), "")
    if speaker:  # allowed, but never silent: the user asked for another voice
        print(f"notice: voice '{plan.voice.name}' cannot be spoken now "
              f"({'; '.join(f'{n}: {r}' for n, r, _ in plan.skipped) or 'its engine failed'}); "
              f"spoke in {speaker} instead", file=sys.stderr)
    result = output.deliver(chunks, target)
    if not target.to_stdout:
        ctx.say(f"wrote {target.path} with {engine} ({result.duration:.1f} s of audio, {result.sample_rate} Hz, "
                f"{target.fmt}) in {time.perf_counter() - started:.1f} s")
    return 0
