"""piper-tts 1.8's own command-line habits for ``piper-infer`` (``python -m piper`` users keep their flags).

Each piper flag either means here what it means there, or is refused with one line saying why (never
argparse's "unrecognized arguments"). The per-line modes (``--output-dir``, ``--json-input``) speak each input
line into its own file, as piper does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from demod_voice.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """piper's flags that ``piper-infer`` has no spelling of its own for."""
    p.add_argument("-i", "--input-file", "--input_file", dest="text_file", metavar="FILE",
                   help="piper's -i: read the text from FILE (same as --text-file)")
    p.add_argument("-c", "--voice-config", dest="voice_config", metavar="JSON",
                   help="piper's -c (the voice's .onnx.json); it must be the one beside the model (MODEL.onnx.json)")
    p.add_argument("-d", "--output-dir", "--output_dir", dest="output_dir", metavar="DIR",
                   help="piper's -d: speak each input line into its own WAV file in DIR")
    p.add_argument("--data-dir", "--data_dir", "--download-dir", "--download_dir", dest="data_dirs", action="append",
                   metavar="DIR", help="piper's --data-dir: also look for voices by name in DIR")
    p.add_argument("--no-normalize", "--no_normalize", dest="normalize", action="store_false", default=None,
                   help="piper's --no-normalize: keep the model's own loudness (config piper.normalize_audio)")
    p.add_argument("--debug", dest="verbose", action="store_const", const=2,
                   help="piper's --debug: debug logging (same as -vv)")
    p.add_argument("--json-input", "--json_input", dest="json_input", action="store_true",
                   help="piper's --json-input: each input line is a JSON object with 'text' and optionally "
                        "'speaker' / 'speaker_id' and 'output_file'")


def apply(args, ctx) -> None:
    """Checks and config overrides of the piper flags (before anything is read or synthesised)."""
    if args.voice_config:
        config = Path(args.voice_config).expanduser()
        model = Path(str(args.model)).expanduser()
        if model.suffix == ".onnx" and config.resolve() != Path(str(model) + ".json").resolve():
            raise UsageError(f"-c {config}: the voice config is read from beside the model ({model}.json)",
                             hint="put the .onnx.json next to the .onnx under that name, and leave -c out")
    if args.data_dirs:
        ctx.cfg.set("paths.voices", [*args.data_dirs, *(ctx.cfg.get("paths.voices") or [])], "command line")
    if args.normalize is not None:
        ctx.cfg.set("piper.normalize_audio", args.normalize, "command line")
    if (args.output_dir or args.json_input) and args.stream:
        raise UsageError("--output-raw writes one stream to standard output; --output-dir and --json-input write files")


def per_line(args) -> bool:
    """Whether this run speaks each input line into its own file (piper's --output-dir / --json-input)."""
    return bool(args.output_dir or args.json_input)


def raw_lines(args) -> str:
    """The input with its line breaks (the one-text path joins lines): TEXT, -i/--text-file, or standard input."""
    import sys

    if args.text not in (None, "-"):
        return args.text
    if args.text_file:
        try:
            return Path(args.text_file).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {args.text_file}: {exc}") from None
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("no text given", hint="pipe the lines in, or pass -i FILE")
    return sys.stdin.buffer.read().decode("utf-8", "replace")


def line_jobs(args, text: str) -> list[tuple[str, str | None, str]]:
    """``(text, speaker, output)`` per non-empty input line; file names as piper makes them (a time stamp)."""
    folder = Path(args.output_dir).expanduser() if args.output_dir else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        speaker, output = args.speaker, None
        if args.json_input:
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--json-input: line {number} is not JSON ({exc.msg})",
                                 hint='each line: {"text": "...", "speaker_id": 0, "output_file": "a.wav"}') from None
            if not isinstance(data, dict) or not str(data.get("text", "")).strip():
                raise UsageError(f"--json-input: line {number} has no 'text'")
            line = str(data["text"])
            if data.get("speaker") is not None or data.get("speaker_id") is not None:
                speaker = str(data.get("speaker", data.get("speaker_id")))
            output = data.get("output_file")
        if output is None:
            output = str(folder / f"{time.monotonic_ns()}.wav") if (args.output_dir or not args.output) else None
        jobs.append((line, speaker, output))
    return jobs
