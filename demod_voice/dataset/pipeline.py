"""The ``piper-preprocess`` run: layouts -> transcripts -> per-utterance work -> outputs."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import demod_voice.dataset.layouts as layouts
import demod_voice.dataset.process as process
import demod_voice.dataset.writers as writers
from demod_voice.dataset.layouts import Row
from demod_voice.errors import EngineError, InputError, UsageError

_LOGGER = logging.getLogger(__name__)

#: Below this much kept audio Piper training tends to fail or overfit: warn (error with --strict).
DEFAULT_MIN_TOTAL_SECONDS = 600.0
TRAINERS = ("both", "piper1", "legacy")
#: Imported once by the forkserver, so each worker starts with them loaded.
_WORKER_MODULES = ("demod_voice.dataset.process", "demod_voice.dataset.phonemes", "demod_voice.quality",
                   "soundfile", "soxr", "pyloudnorm", "piper.phonemize_espeak", "piper.phoneme_ids", "tqdm")


@dataclass
class Options:
    """The command's options (see docs/dataset.md)."""

    input_dir: Path
    output_dir: Path
    language: str = "en-us"
    format: str = "auto"
    sample_rate: int = 22050
    speakers: str = "auto"
    """``single``, ``multi`` or ``auto`` (detected from the input)."""
    min_duration: float = 0.5
    max_duration: float = 20.0
    min_quality: float = 0.4
    workers: int = 1
    transcribe: bool = False
    dry_run: bool = False
    strict: bool = False
    trainer: str = "both"
    voice_config: Path | None = None
    """Take the phoneme id map from this Piper voice config (fine-tuning)."""
    whisper_model: str | None = None
    min_total_seconds: float = DEFAULT_MIN_TOTAL_SECONDS
    quiet: bool = False


@dataclass
class Result:
    """What a run produced: the report (as written to report.json) and counts."""

    report: dict
    summary: str
    processed: int = 0
    """Utterances worked on in this run."""
    reused: int = 0
    """Utterances taken from an earlier run (resume)."""
    transcribed: int = 0
    written: list = field(default_factory=list)


def prepare(opts: Options, say: Callable[[str], None] = lambda msg: None) -> Result:
    """Validate, process and write a dataset (or, with ``dry_run``, only validate and report)."""
    from demod_voice.dataset.phonemes import default_id_map, read_id_map

    input_dir, output_dir = Path(opts.input_dir).resolve(), Path(opts.output_dir).resolve()
    _check_options(opts, input_dir, output_dir)
    fmt = layouts.detect_format(input_dir, opts.format) if input_dir.is_dir() else opts.format
    rows, multi = layouts.read_rows(input_dir, opts.format, opts.speakers, opts.transcribe)
    id_map = read_id_map(opts.voice_config) if opts.voice_config else default_id_map()
    settings = process.Settings(
        output_dir=str(output_dir), sample_rate=opts.sample_rate, language=opts.language,
        min_duration=opts.min_duration, max_duration=opts.max_duration, min_quality=opts.min_quality,
        legacy=opts.trainer in ("both", "legacy"),
        id_map_digest=hashlib.sha256(json.dumps(id_map, sort_keys=True).encode()).hexdigest()[:16],
    )
    # Fail on a bad language before any work, in this process.
    from demod_voice.dataset.phonemes import Phonemizer

    Phonemizer(opts.language, id_map)
    say(f"{len(rows)} rows in {input_dir} ({fmt}, {'multi' if multi else 'single'} speaker)")

    transcribed = 0
    if opts.transcribe and not opts.dry_run:
        transcribed = _transcribe_missing(rows, input_dir, output_dir, opts)

    jobs = {row.id: process.Job(row.id, str(row.audio_path), row.text or "", row.speaker if multi else None)
            for row in rows if row.valid}
    results: dict[str, dict] = {}
    reused = processed = 0

    if opts.dry_run or opts.strict:
        # Validation before processing: inspect every valid row without writing anything.
        inspect = {k: process.Job(j.id, j.audio_path, j.text, j.speaker, inspect_only=True) for k, j in jobs.items()}
        checked = _run_jobs(inspect, settings, opts, id_map, "checking")
        report = _build_report(rows, checked, opts, input_dir, output_dir, fmt, multi, settings, inspected=True)
        if opts.dry_run:
            return Result(report, render_summary(report, dry_run=True), transcribed=transcribed)
        _raise_if_strict(report)

    _prepare_output_dir(output_dir)
    todo = {}
    for key, job in jobs.items():
        record = process.load_record(job, settings)
        if record is not None:
            results[key] = record
            reused += 1
        else:
            todo[key] = job
    if reused:
        say(f"resuming: {reused} utterances already done, {len(todo)} to go")
    results.update(_run_jobs(todo, settings, opts, id_map, "preprocess"))
    processed = len(todo)

    report = _build_report(rows, results, opts, input_dir, output_dir, fmt, multi, settings)
    summary = render_summary(report)
    written = [output_dir / "report.json", output_dir / "summary.txt"]
    writers.write_json(output_dir / "report.json", report)
    writers.write_text(output_dir / "summary.txt", summary)
    if opts.strict:
        _raise_if_strict(report)
    kept = [entry for entry in report["utterances"] if entry["status"] == "ok"]
    if not kept:
        raise InputError(f"no usable utterances in {input_dir}: every row was invalid or dropped",
                         hint=f"see {output_dir / 'summary.txt'} for the reason of each row")
    _write_outputs(output_dir, kept, report, multi, id_map, opts, written)
    _prune(output_dir, {entry["id"] for entry in kept})
    return Result(report, summary, processed=processed, reused=reused, transcribed=transcribed, written=written)


def _check_options(opts: Options, input_dir: Path, output_dir: Path) -> None:
    if opts.trainer not in TRAINERS:
        raise UsageError(f"unknown trainer '{opts.trainer}'", hint="use " + ", ".join(TRAINERS))
    if opts.workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {opts.workers}")
    if opts.min_duration >= opts.max_duration:
        raise UsageError(f"--min-duration {opts.min_duration:g} must be below --max-duration {opts.max_duration:g}")
    if not 0.0 <= opts.min_quality <= 1.0:
        raise UsageError(f"--min-quality must be between 0 and 1, got {opts.min_quality:g}")
    if not 8000 <= opts.sample_rate <= 48000:
        raise UsageError(f"--sample-rate {opts.sample_rate} is outside 8000-48000 Hz", hint="Piper voices use 16000 or 22050")
    if output_dir == input_dir or input_dir in output_dir.parents:
        raise UsageError(f"--output-dir {output_dir} is inside --input-dir",
                         hint="write the dataset somewhere else, so it is never read back as input")
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"--output-dir is not a folder: {output_dir}")


def _transcribe_missing(rows: list[Row], input_dir: Path, output_dir: Path, opts: Options) -> int:
    from demod_voice.dataset import transcribe

    wanted = [r for r in rows if r.valid and not r.text and r.audio_path is not None]
    if not wanted:
        return 0
    cache = transcribe.load_cache(output_dir)
    keys = {r.id: _source_key(r.audio_path) for r in wanted}
    missing = [r for r in wanted if cache.get(r.id, {}).get("source") != keys[r.id]]
    if missing:
        from demod_voice import progress

        model = transcribe.Transcriber(opts.whisper_model, opts.language)
        output_dir.mkdir(parents=True, exist_ok=True)
        for row in progress.iterate(missing, len(missing), desc="transcribing", unit="utt", quiet=opts.quiet):
            cache[row.id] = {"source": keys[row.id], "text": layouts.clean_text(model(row.audio_path))}
            transcribe.save_cache(output_dir, cache)
    for row in wanted:
        row.text = cache[row.id]["text"]
        row.issues = [i for i in row.issues if i.code != "transcribe"]
        row.add("transcribed", f"transcript made by Whisper: {row.text!r}", "warning")
        if not row.text:
            row.add("empty_text", "Whisper heard no speech in the recording")
    return len(missing)


def _source_key(path: Path) -> str:
    from demod_voice.paths import file_identity

    return file_identity(path)


def _run_jobs(jobs: dict, settings, opts: Options, id_map: dict, desc: str) -> dict[str, dict]:
    """Run ``process.handle`` over ``jobs`` (in worker processes when ``opts.workers`` > 1)."""
    from demod_voice import progress

    results: dict[str, dict] = {}
    if not jobs:
        return results
    bar = progress.bar(len(jobs), desc=desc, unit="utt", quiet=opts.quiet)
    try:
        if opts.workers == 1 or len(jobs) == 1:
            process.init_worker(settings.language, id_map)
            for key, job in jobs.items():
                results[key] = process.handle(job, settings)
                bar.update()
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed
            from concurrent.futures.process import BrokenProcessPool

            # forkserver: workers start clean (no threads inherited from Whisper), and the
            # server imports the heavy modules (torch for the legacy tensors) once for all workers.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(_WORKER_MODULES) + (["torch"] if settings.legacy else []))
            pool = ProcessPoolExecutor(max_workers=min(opts.workers, len(jobs)), mp_context=context,
                                       initializer=process.init_worker, initargs=(settings.language, id_map))
            try:
                futures = {pool.submit(process.handle, job, settings): key for key, job in jobs.items()}
                for future in as_completed(futures):
                    try:
                        results[futures[future]] = future.result()
                    except BrokenProcessPool:
                        raise EngineError(f"a worker process died while preparing '{futures[future]}' "
                                          "(out of memory, or killed)",
                                          hint="run the command again to resume; try fewer --workers") from None
                    bar.update()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
    return results


def _prepare_output_dir(output_dir: Path) -> None:
    try:
        for sub in ("wavs", "cache", process.RESUME_DIR):
            (output_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {output_dir}: {exc.strerror}",
                         hint="choose a writable --output-dir") from None
    # Temporary files left by a killed run.
    for sub in (".", "wavs", "cache", process.RESUME_DIR):
        for stale in (output_dir / sub).glob(".*.part"):
            stale.unlink(missing_ok=True)


def _build_report(rows, results, opts, input_dir, output_dir, fmt, multi, settings, inspected=False) -> dict:
    entries = []
    for row in rows:
        entry = {"id": row.id, "where": row.where, "line": row.line,
                 "source": str(row.audio_path) if row.audio_path else None,
                 "speaker": row.speaker if multi else None, "text": row.text,
                 "status": "ok" if row.valid else "invalid",
                 "issues": [i.to_dict() for i in row.issues]}
        result = results.get(row.id) if row.valid else None
        if result is not None:
            entry["status"] = result["status"]
            entry["issues"] = entry["issues"] + result["issues"]
            for key in ("duration_in", "duration_out", "source_sample_rate", "quality", "phonemes",
                        "phoneme_ids", "wav", "audio_norm_path", "audio_spec_path"):
                if key in result:
                    entry[key] = result[key]
        entries.append(entry)
    kept = [e for e in entries if e["status"] == "ok"]
    seconds_out = sum(e.get("duration_out", 0.0) for e in kept)
    totals = {
        "rows": len(entries),
        "kept": len(kept),
        "invalid": sum(e["status"] == "invalid" for e in entries),
        "dropped": sum(e["status"] == "dropped" for e in entries),
        "warnings": sum(1 for e in entries for i in e["issues"] if i["severity"] == "warning"),
        "seconds_in": round(sum(e.get("duration_in", 0.0) for e in entries), 2),
        "seconds_kept": round(seconds_out, 2),
        "min_total_seconds": opts.min_total_seconds,
        "enough_audio": seconds_out >= opts.min_total_seconds,
    }
    return {
        "input_dir": str(input_dir), "output_dir": str(output_dir), "format": fmt,
        "multi_speaker": multi, "language": opts.language, "sample_rate": opts.sample_rate,
        "inspected_only": inspected,
        "settings": {"min_duration": opts.min_duration, "max_duration": opts.max_duration,
                     "min_quality": opts.min_quality, "target_lufs": process.TARGET_LUFS,
                     "trainer": opts.trainer, "voice_config": str(opts.voice_config) if opts.voice_config else None},
        "totals": totals,
        "utterances": entries,
    }


def _raise_if_strict(report: dict) -> None:
    totals = report["totals"]
    bad = [e for e in report["utterances"] if e["status"] == "invalid"]
    if bad:
        first = "; ".join(f"{e['where']}: {e['issues'][0]['message']}" for e in bad[:5] if e["issues"])
        raise InputError(f"--strict: {len(bad)} invalid row(s): {first}" + (" ..." if len(bad) > 5 else ""),
                         hint="fix or remove those rows, or run without --strict to skip them (see --dry-run)")
    if not totals["enough_audio"]:
        raise InputError(f"--strict: {_minutes(totals['seconds_kept'])} of usable audio, "
                         f"{_minutes(totals['min_total_seconds'])} needed to train",
                         hint="record more, or lower dataset.min_total_seconds")


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def render_summary(report: dict, dry_run: bool = False) -> str:
    """The readable summary (summary.txt, and what the command prints)."""
    t = report["totals"]
    lines = [
        f"piper-preprocess{' (dry run: nothing written)' if dry_run else ''}",
        f"input:  {report['input_dir']} ({report['format']}, "
        f"{'multi' if report['multi_speaker'] else 'single'} speaker, {report['language']}, {report['sample_rate']} Hz)",
        f"rows:   {t['rows']}: {t['kept']} {'valid' if dry_run else 'kept'}, {t['invalid']} invalid, "
        f"{t['dropped']} dropped below --min-quality, {t['warnings']} warning(s)",
        f"audio:  {_minutes(t['seconds_kept'])} {'valid' if dry_run else 'kept'} of {_minutes(t['seconds_in'])} read",
    ]
    if not t["enough_audio"]:
        lines.append(f"WARNING: only {_minutes(t['seconds_kept'])} of usable audio; Piper training needs at least "
                     f"{_minutes(t['min_total_seconds'])} (fine-tuning from a checkpoint) and 1-2 hours for a new "
                     "voice; with less, training fails or overfits")
    problems = [(e, i) for e in report["utterances"] for i in e["issues"]]
    if problems:
        lines.append("problems:")
        for entry, issue in problems:
            label = entry["where"] + (f" ({entry['id']})" if entry["id"] and entry["line"] else "")
            lines.append(f"  {issue['severity']}: {label}: {issue['code']}: {issue['message']}")
    if not dry_run and t["kept"]:
        out = report["output_dir"]
        lines += [
            "outputs:",
            f"  {out}/metadata.csv + wavs/   piper1-gpl: python -m piper.train fit --data.csv_path {out}/metadata.csv "
            f"--data.audio_dir {out}/wavs --data.espeak_voice {report['language']} "
            f"--model.sample_rate {report['sample_rate']} ...",
        ]
        if report["settings"]["voice_config"]:
            lines.append(f"  {out}/phoneme_id_map.json   the voice's id map: add --data.phonemes_path with it")
        if report["settings"]["trainer"] != "piper1":
            lines.append(f"  {out}/config.json + dataset.jsonl   legacy: python -m piper_train --dataset-dir {out} ...")
        lines.append(f"  {out}/report.json   every row, its issues and quality scores")
    return "\n".join(lines) + "\n"


def _write_outputs(output_dir: Path, kept: list[dict], report: dict, multi: bool, id_map: dict,
                   opts: Options, written: list) -> None:
    speaker_ids = {name: i for i, name in enumerate(sorted({e["speaker"] for e in kept if e["speaker"]}))} if multi else {}
    if opts.trainer in ("both", "piper1"):
        writers.write_metadata_csv(output_dir / "metadata.csv", kept, multi)
        # For piper1-gpl's --data.phonemes_path: the id map the phoneme ids were made with.
        writers.write_json(output_dir / "phoneme_id_map.json", id_map)
        written += [output_dir / "metadata.csv", output_dir / "phoneme_id_map.json"]
    if opts.trainer in ("both", "legacy"):
        writers.write_dataset_jsonl(output_dir / "dataset.jsonl", output_dir, kept, speaker_ids)
        writers.write_json(output_dir / "config.json", writers.voice_config(
            name=output_dir.name, language=opts.language, sample_rate=opts.sample_rate, id_map=id_map,
            speaker_ids=speaker_ids))
        written += [output_dir / "dataset.jsonl", output_dir / "config.json"]


def _prune(output_dir: Path, keep: set[str]) -> None:
    """Remove audio of utterances an earlier run kept but this one does not."""
    for path in list((output_dir / "wavs").glob("*.wav")):
        if path.stem not in keep:
            path.unlink(missing_ok=True)
    for path in list((output_dir / "cache").glob("*.pt")):
        name = path.name
        utt_id = name[: -len(".spec.pt")] if name.endswith(".spec.pt") else name[: -len(".pt")]
        if utt_id not in keep:
            path.unlink(missing_ok=True)
