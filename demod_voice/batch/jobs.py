"""Reading and validating a job file (CSV or JSONL).

CSV: the original columns ``reference,text,output[,language,speaker]`` work
unchanged, with or without a header row. A header may also name the extended
columns (``engine``, ``voice``, ``model``, ``input``, ``format``, ``id``) and
per-job options (``speed``, ``noise_scale``, ``temperature``, ``pitch``...).
JSONL: one object per line with the same names; ``reference`` may be a list,
options may also sit under ``"options"``.

Every job is validated before anything runs; a bad job becomes an
``InvalidJob`` carrying its line number and the reason, the others run.
Problems with the file as a whole (unreadable, bad header, no jobs) raise
``InputError`` (exit 2).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from demod_voice import audio as audio_mod
from demod_voice.errors import DemodError, InputError
from demod_voice.suggest import did_you_mean
from demod_voice.synthesis import registry

#: The original, positional CSV columns.
ORIGINAL_COLUMNS = ("reference", "text", "output", "language", "speaker")
#: Columns every engine understands.
BASE_COLUMNS = ORIGINAL_COLUMNS + ("id", "engine", "voice", "model", "input", "format", "rvc", "captions")
#: Bump when the meaning of a job changes so old resume records stop matching.
HASH_VERSION = 1


@dataclass
class Job:
    """One validated unit of work: synthesise (or convert) into one output file."""

    line: int
    """Line number in the job file (where the record starts)."""
    engine: str
    output: Path
    """Absolute output path."""
    fmt: str
    """Output format (from ``format`` or the output suffix)."""
    text: str = ""
    reference: list[Path] = field(default_factory=list)
    """Reference audio (XTTS), absolute paths."""
    model: str = ""
    """Voice or model: a Piper voice name/.onnx, an XTTS model folder, an RVC model."""
    voice: str = ""
    """XTTS: a saved voice (a voice profile of the CLI user) instead of reference audio."""
    input: Path | None = None
    """Input audio (RVC)."""
    language: str = ""
    speaker: str = ""
    options: dict = field(default_factory=dict)
    rvc: str = ""
    """TTS jobs: convert the speech with this RVC voice afterwards (sentence by sentence, like everywhere)."""
    rvc_options: dict = field(default_factory=dict)
    """RVC options (pitch, index_rate, ...) for ``rvc``."""
    id: str = ""
    hash: str = ""
    """Job hash recorded beside the output for resume (set by validation)."""
    group: tuple = ()
    captions: Path | None = None
    """Also write word timings here (.srt, .vtt or .json)."""
    """Jobs with the same group share a loaded model and conditioning."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["output"] = str(self.output)
        data["reference"] = [str(p) for p in self.reference]
        data["input"] = str(self.input) if self.input else None
        data["group"] = list(self.group)
        data["captions"] = str(self.captions) if self.captions else None
        return data


@dataclass
class InvalidJob:
    """A record that cannot run, with its line number and why."""

    line: int
    error: DemodError
    output: str = ""
    engine: str = ""
    id: str = ""

    def describe(self) -> str:
        hint = f"; {self.error.hint}" if self.error.hint else ""
        return f"line {self.line}: {self.error.message}{hint}"


@dataclass
class JobFile:
    path: Path
    jobs: list[Job]
    invalid: list[InvalidJob]

    @property
    def total(self) -> int:
        return len(self.jobs) + len(self.invalid)


# --- reading -----------------------------------------------------------------------

def _normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_").replace(" ", "_")


def _known_columns() -> set[str]:
    return set(BASE_COLUMNS) | registry.job_option_names() | {"options"}


def _detect_kind(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def read_records(path: Path) -> Iterator[tuple[int, dict | DemodError]]:
    """Yield ``(line, record)`` for every job in the file, or ``(line, error)`` for a broken line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"job file not found: {path}", hint="check the path") from None
    except IsADirectoryError:
        raise InputError(f"job file is a folder: {path}", hint="pass a .csv or .jsonl file") from None
    except OSError as exc:
        raise InputError(f"cannot read job file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"job file {path} is not UTF-8 text (byte {exc.start})",
                         hint="save it as UTF-8 CSV or JSONL") from None
    if _detect_kind(path, text) == "jsonl":
        yield from _read_jsonl(text)
    else:
        yield from _read_csv(path, text)


def _read_jsonl(text: str) -> Iterator[tuple[int, dict | DemodError]]:
    known = _known_columns()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, InputError(f"not valid JSON: {exc.msg} (column {exc.colno})",
                                     hint="each line must be one JSON object")
            continue
        if not isinstance(record, dict):
            yield number, InputError(f"expected a JSON object, found {type(record).__name__}")
            continue
        record = {_normalise_key(str(k)): v for k, v in record.items()}
        unknown = sorted(k for k in record if k not in known)
        if unknown:
            yield number, InputError(f"unknown field '{unknown[0]}'{did_you_mean(unknown[0], sorted(known))}",
                                     hint="known fields: " + ", ".join(sorted(known)))
            continue
        options = record.pop("options", None) or {}
        if not isinstance(options, dict):
            yield number, InputError("'options' must be a JSON object")
            continue
        for key, value in options.items():
            key = _normalise_key(str(key))
            if key not in known:
                yield number, InputError(f"unknown option '{key}'{did_you_mean(key, sorted(known - {'options'}))}")
                break
            record.setdefault(key, value)
        else:
            yield number, record


def _read_csv(path: Path, text: str) -> Iterator[tuple[int, dict | DemodError]]:
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect)
    known = _known_columns()
    header: list[str] | None = None
    positional = False
    last_line = 0
    try:
        for row in reader:
            start, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None and not positional:
                names = [_normalise_key(c) for c in row]
                # a header names a column; the original headerless rows hold a path, text and a path
                if any(n in known for n in names):
                    unknown = [(c, n) for c, n in zip(row, names, strict=False) if n not in known]
                    if unknown:
                        guess = did_you_mean(unknown[0][1], sorted(known))
                        raise InputError(f"unknown column '{unknown[0][0]}'{guess} in the header of {path} (line {start})",
                                         hint="known columns: " + ", ".join(sorted(known)))
                    if "output" not in names:
                        raise InputError(f"the header of {path} has no 'output' column (line {start})",
                                         hint="every job needs an output file")
                    duplicated = {n for n in names if names.count(n) > 1}
                    if duplicated:
                        raise InputError(f"column '{sorted(duplicated)[0]}' appears twice in the header of {path}")
                    header = names
                    continue
                positional = True  # the original headerless reference,text,output[,language,speaker]
            columns = header or list(ORIGINAL_COLUMNS)
            if len(row) > len(columns):
                extra = row[len(columns):]
                if any(cell.strip() for cell in extra):
                    yield start, InputError(f"{len(row)} fields but {len(columns)} columns",
                                            hint="quote text that contains commas: \"Hello, world\"")
                    continue
            yield start, {name: cell for name, cell in zip(columns, row, strict=False) if cell.strip() != ""}
    except csv.Error as exc:
        raise InputError(f"{path} is not valid CSV near line {reader.line_num}: {exc}",
                         hint="check quoting: text with commas or quotes must be in double quotes") from None


# --- validation ----------------------------------------------------------------------

def _str_field(record: dict, name: str) -> str:
    value = record.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise InputError(f"field '{name}' must be a string, found {type(value).__name__}")
    return str(value).strip()


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _infer_engine(record: dict, cfg=None) -> str:
    engine = _str_field(record, "engine").lower()
    if engine:
        known = registry.names(cfg)
        if engine not in known:
            raise InputError(f"unknown engine '{engine}'", hint="use one of " + ", ".join(known))
        return engine
    inferred = registry.infer(record, cfg)
    if inferred is None:
        implied = [f"{'/'.join(registry.get(n, cfg).INFER_FROM)} ({n})" for n in registry.names(cfg)
                   if registry.get(n, cfg).INFER_FROM]
        raise InputError("cannot tell which engine to use", hint="give " + ", ".join(implied) + ", or an 'engine' column")
    return inferred


def _path_like(value: str, base: Path) -> bool:
    return "/" in value or value.startswith((".", "~")) or (base / value).exists()


def _saved_voice(record: dict, base: Path, cfg):
    """The saved voice (profile of the CLI user) that ``voice`` names, when it names one; it decides the engine."""
    name = _str_field(record, "voice")
    if not name or record.get("reference") or record.get("input") or _path_like(name, base):
        return None
    from demod_voice.voices import store_for

    try:
        store = store_for(cfg)
        return store.get(name) if store.exists(name) else None
    except InputError:  # not a valid voice name: a Piper voice or path, checked by its engine
        return None


def _check_output_folder(output: Path) -> None:
    if output.is_dir():
        raise InputError(f"output is a folder: {output}", hint="give a file name, e.g. out/line1.wav")
    parent = output.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"output folder is not a folder: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder is not writable: {parent}")


def _captions_path(base: Path, value: str) -> Path | None:
    if not value:
        return None
    from demod_voice.captions import caption_format

    path = _resolve(base, value).absolute()
    try:
        caption_format(path)
    except DemodError as exc:
        raise InputError(f"captions: {exc.message}", hint=exc.hint) from None
    _check_output_folder(path)
    return path


def build_job(line: int, record: dict, base: Path, cfg) -> Job:
    """Turn one record into a validated ``Job`` (raises ``InputError`` naming the problem)."""
    saved = _saved_voice(record, base, cfg)
    engine = saved.engine if saved is not None and not record.get("engine") else _infer_engine(record, cfg)
    adapter = registry.get(engine, cfg)
    output_value = _str_field(record, "output")
    if not output_value:
        raise InputError("no output file", hint="fill the 'output' column")
    output = _resolve(base, output_value).absolute()
    fmt = audio_mod.format_for(output, _str_field(record, "format") or None, cfg.get("output.format"))
    references = record.get("reference") or []
    if isinstance(references, str):
        references = [r for r in (p.strip() for p in references.split("|")) if r]
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        raise InputError("'reference' must be a path or a list of paths")
    model = _str_field(record, "voice") or _str_field(record, "model")
    saved_name = ""
    if engine == "xtts" and _str_field(record, "voice") and not _path_like(_str_field(record, "voice"), base):
        saved_name, model = _str_field(record, "voice"), _str_field(record, "model")  # a saved voice
    elif saved is not None and engine == "piper":  # a saved voice spoken by Piper: its Piper voice
        model = saved.piper_voice or cfg.get("piper.default_voice")
    elif record.get("voice") and record.get("model") and adapter.KIND != "convert":
        raise InputError("give either 'voice' or 'model', not both")
    if model.startswith("~"):
        model = str(Path(model).expanduser())
    looks_like_path = "/" in model or model.startswith(".") or model.endswith((".onnx", ".pth", ".pt"))
    if model and not Path(model).is_absolute() and (looks_like_path or (base / model).exists()):
        model = str(base / model)  # relative to the job file, like every other path in it
    input_value = _str_field(record, "input")
    options: dict[str, Any] = {}
    rvc_voice = _str_field(record, "rvc") if adapter.KIND != "convert" else ""
    rvc_options: dict[str, Any] = {}
    chain_options = registry.converter().JOB_OPTIONS if rvc_voice else {}
    for name in sorted(registry.job_option_names(cfg)):
        if name in record and record[name] not in ("", None):
            if name in adapter.JOB_OPTIONS:
                options[name] = adapter.JOB_OPTIONS[name].parse(name, record[name])
            elif name in chain_options:
                rvc_options[name] = chain_options[name].parse(name, record[name])
            else:
                raise InputError(f"option '{name}' does not apply to {engine} jobs",
                                 hint=f"{engine} options: " + (", ".join(sorted(adapter.JOB_OPTIONS)) or "none")
                                 + ("" if rvc_voice else "; RVC options need an 'rvc' voice"))
    job = Job(
        line=line, engine=engine, output=output, fmt=fmt,
        text=_str_field(record, "text"),
        reference=[_resolve(base, r).absolute() for r in references],
        model=model,
        voice=saved_name,
        input=_resolve(base, input_value).absolute() if input_value else None,
        language=_str_field(record, "language"),
        speaker=_str_field(record, "speaker"),
        options=options,
        rvc=rvc_voice,
        rvc_options=rvc_options,
        id=_str_field(record, "id"),
        captions=_captions_path(base, _str_field(record, "captions")),
    )
    limit = cfg.get("batch.max_text_chars")
    if len(job.text) > limit:  # a job's audio is held whole in its worker: bound it before anything loads
        raise InputError(f"text is {len(job.text)} characters, more than batch.max_text_chars ({limit})",
                         hint="split it into several jobs, use piper-infer/xtts-zero-shot (which stream to the "
                              "file), or raise batch.max_text_chars")
    for path in (*job.reference, *([job.input] if job.input else [])):
        if path.resolve() == job.output.resolve() or (job.captions and path.resolve() == job.captions.resolve()):
            raise InputError(f"output {job.output.name} would overwrite an input of the same job")
    if job.captions and job.captions.resolve() == job.output.resolve():
        raise InputError("captions and output are the same file", hint="give the captions their own .srt/.vtt/.json")
    if job.captions and not getattr(adapter, "OWN_WORDS", False):  # others' words come from Whisper: set its model
        from demod_voice.alignment import whisper_model_name

        whisper_model_name(cfg)
    _check_output_folder(job.output)
    identity = adapter.validate_job(job, cfg)
    job.group = tuple(adapter.group_key(job))
    job.hash = job_hash(job, identity)
    return job


def job_hash(job: Job, identity: Any) -> str:
    """A digest of everything that determines the output: text, options, format and input files."""
    payload = {
        "v": HASH_VERSION, "engine": job.engine, "output": str(job.output), "format": job.fmt, "text": job.text,
        "language": job.language, "speaker": job.speaker, "options": job.options, "identity": identity,
        **({"rvc": job.rvc, "rvc_options": job.rvc_options} if job.rvc else {}),
        # only when set, so jobs without captions keep their recorded hashes
        **({"captions": str(job.captions)} if job.captions else {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def load(path: str | os.PathLike, cfg) -> JobFile:
    """Read and validate every job in ``path``."""
    path = Path(path).expanduser()
    base = path.absolute().parent
    jobs: list[Job] = []
    invalid: list[InvalidJob] = []
    outputs: dict[Path, int] = {}
    for line, record in read_records(path):
        if isinstance(record, DemodError):
            invalid.append(InvalidJob(line, record))
            continue
        try:
            job = build_job(line, record, base, cfg)
        except DemodError as exc:
            invalid.append(InvalidJob(line, exc, output=str(record.get("output", "") or ""),
                                      engine=str(record.get("engine", "") or ""), id=str(record.get("id", "") or "")))
            continue
        key = job.output.resolve()
        if key in outputs:
            invalid.append(InvalidJob(line, InputError(f"output {job.output} is also written by line {outputs[key]}",
                                                       hint="give every job its own output file"),
                                      output=str(job.output), engine=job.engine, id=job.id))
            continue
        if key == path.absolute().resolve():
            invalid.append(InvalidJob(line, InputError("output would overwrite the job file itself")))
            continue
        outputs[key] = line
        jobs.append(job)
    if not jobs and not invalid:
        raise InputError(f"no jobs in {path}", hint="add rows: reference,text,output[,language,speaker]")
    return JobFile(path=path, jobs=jobs, invalid=invalid)
