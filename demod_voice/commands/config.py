"""``config show|validate|init``: inspect and create configuration."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub, common) -> None:
    p = sub.add_parser("config", parents=[common], help="show, validate or create configuration",
                       description="Show the effective configuration, validate a file, or write an example.")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    show = csub.add_parser("show", parents=[common], help="print the effective config and where each value came from")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=run_show)
    val = csub.add_parser("validate", parents=[common], help="check a config file")
    val.add_argument("file", metavar="FILE")
    val.set_defaults(func=run_validate)
    init = csub.add_parser("init", parents=[common], help="write a commented example config")
    init.add_argument("--path", metavar="FILE", help="where to write it (default: the user config file; '-' prints it)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=run_init)
    hk = csub.add_parser("hash-key", parents=[common], help="make a salted hash of an API key for server.api_keys",
                         description="Read an API key from standard input (or make a new random one with --new) and "
                                     "print its salted hash for server.api_keys. The plain key is never stored.")
    hk.add_argument("--new", action="store_true", help="generate a random key; print it (once) on stderr")
    hk.add_argument("--user", metavar="NAME", help="print a ready config line 'NAME: HASH'")
    hk.set_defaults(func=run_hash_key)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 0)[1])


def _resolved(rows, cfg):
    """Folders left unset show the folder they resolve to (not ``null``), marked as the default."""
    from pathlib import Path

    folders = {"paths.data_dir": cfg.data_dir, "paths.cache_dir": cfg.cache_dir,
               "cache.dir": Path(cfg.cache_dir) / "audio",
               "ray_serve.cache_dir": Path(cfg.get("cache.dir") or Path(cfg.cache_dir) / "audio"),  # cache.default_root
               "xtts.model_dir": Path(cfg.data_dir) / "models" / "xtts-v2",
               "styletts2.model_dir": Path(cfg.data_dir) / "models" / "styletts2-libritts"}
    return [(key, str(folders[key]), f"{source} (resolved)") if value is None and key in folders
            else (key, value, source) for key, value, source in rows]


def run_show(args, ctx) -> int:
    from demod_voice.config import render_effective

    rows = _resolved(render_effective(ctx.cfg), ctx.cfg)
    if args.json:
        print(json.dumps({k: {"value": v, "source": s} for k, v, s in rows}, indent=2, default=str))
        return 0
    width = max(len(k) for k, _, _ in rows)
    for key, value, source in rows:
        shown = json.dumps(value, default=str)
        print(f"{key:<{width}}  {shown:<24}  # {source}")
    return 0


def run_validate(args, ctx) -> int:
    from demod_voice.config import validate_file

    keys = validate_file(args.file)
    ctx.say(f"{args.file}: valid ({len(keys)} keys set)")
    return 0


def run_init(args, ctx) -> int:
    from demod_voice import paths
    from demod_voice.config import example_yaml
    from demod_voice.errors import InputError
    from demod_voice.paths import atomic_write_bytes

    text = example_yaml()
    if args.path == "-":
        print(text, end="")
        return 0
    target = Path(args.path) if args.path else paths.user_config_file()
    if target.exists() and not args.force:
        raise InputError(f"{target} already exists", hint="pass --force to overwrite it, or --path to write elsewhere")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, text.encode())
    ctx.say(f"wrote {target}")
    return 0


def run_hash_key(args, ctx) -> int:
    import sys

    from demod_voice.errors import InputError
    from demod_voice.paths import validate_name
    from demod_voice.server import security

    if args.user:
        validate_name(args.user, "user name")
    if args.new:
        key = security.new_key()
        print(f"new API key (give it to the client; it is not shown again): {key}", file=sys.stderr)
    else:
        if sys.stdin.isatty():
            import getpass

            key = getpass.getpass("API key: ")
        else:
            key = sys.stdin.readline().strip()
        if len(key) < security.MIN_KEY_CHARS:
            raise InputError(f"the API key is {len(key)} characters; use at least {security.MIN_KEY_CHARS}",
                             hint="or pass --new for a random one")
    hashed = security.hash_key(key)
    print(f"{args.user}: {hashed}" if args.user else hashed)
    return 0
