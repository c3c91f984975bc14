"""The training job's own process: ``python -m demod_voice.training.worker JOB_FOLDER``.

Prepares the data (a profile's samples go through the ``piper-preprocess`` pipeline), trains with
``training.piper``, exports the voice and registers it (``training.store``), writing ``status.json`` and
``progress.jsonl`` as it goes. SIGINT and SIGTERM stop it after the current step, with ``last.ckpt`` saved
(exit 130, status ``cancelled``).
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from demod_voice.errors import EXIT_FAILURE, EXIT_INTERRUPTED, DemodError, InputError
from demod_voice.training.jobs import Job, Spec, Stop

_LOGGER = logging.getLogger("demod_voice.training")
#: Profile languages (as the profile stores them) -> espeak-ng voices.
_ESPEAK = {"en": "en-us"}


def prepare_profile(cfg, spec: Spec, folder: Path, record) -> tuple[Path, str]:
    """A profile's samples -> a ``piper-preprocess`` dataset in ``folder/dataset`` (transcripts: side-cars, else
    Whisper); returns (dataset, espeak voice)."""
    from demod_voice.dataset import Options, prepare
    from demod_voice.voices import store_for

    store = store_for(cfg, spec.user)
    profile = store.get(spec.profile)
    samples = store.samples(spec.profile)
    if not samples:
        raise InputError(f"profile '{spec.profile}' has no samples",
                         hint=f"add recordings with 'demod-voice voices samples add {spec.profile} FILE'")
    source = folder / "source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    missing = 0
    for sample in samples:
        (source / f"{sample.id}.wav").symlink_to(profile.samples_dir / f"{sample.id}.wav")
        if sample.transcript:
            (source / f"{sample.id}.txt").write_text(sample.transcript + "\n", encoding="utf-8")
        else:
            missing += 1
    language = _ESPEAK.get(profile.language, profile.language) if profile.language else spec.language
    whisper = None
    if missing:
        from demod_voice.engines.whisper import engine as whisper_engine

        name = cfg.get("dataset.whisper_model") or cfg.get("stt.model")
        whisper = str(whisper_engine.resolve(name, cfg)) if name else None
    record({"event": "phase", "phase": "preparing", "samples": len(samples), "to_transcribe": missing})
    opts = Options(input_dir=source, output_dir=folder / "dataset", language=language, format="pairs",
                   speakers="single", trainer="piper1", transcribe=bool(missing), whisper_model=whisper,
                   min_total_seconds=cfg.get("dataset.min_total_seconds"), quiet=True)
    prepare(opts)
    return folder / "dataset", language


def run(job: Job, stop: Stop) -> int:
    from demod_voice import config
    from demod_voice.training import piper, store

    spec = job.spec()
    cfg = config.load(spec.config, flags={"paths.data_dir": spec.data_dir or None})
    voice_dir = store.voice_dir(cfg, spec.user, spec.voice)
    voice_dir.mkdir(parents=True, exist_ok=True)
    job.set_status("running", voice_dir=str(voice_dir))
    if spec.profile:
        dataset, language = prepare_profile(cfg, spec, voice_dir, job.record)
    else:
        dataset, language = Path(spec.dataset), spec.language
        report = dataset / "report.json"
        if report.is_file():
            language = json.loads(report.read_text(encoding="utf-8")).get("language") or language
    if stop.requested:
        job.set_status("cancelled", finished=time.time())
        return EXIT_INTERRUPTED
    job.record({"event": "phase", "phase": "training"})
    summary = piper.train(
        dataset=dataset, work=voice_dir, voice=spec.voice, language=language, arch=spec.arch,
        batch_size=spec.batch_size, max_steps=spec.max_steps, max_epochs=spec.max_epochs,
        accelerator=spec.accelerator, checkpoint_every=spec.checkpoint_every,
        warmstart=Path(spec.warmstart) if spec.warmstart else None, resume=spec.resume, record=job.record, stop=stop)
    if summary["stopped"]:
        job.set_status("cancelled", finished=time.time(), step=summary["steps"],
                       checkpoint=str(voice_dir / "checkpoints" / "last.ckpt"))
        return EXIT_INTERRUPTED
    job.record({"event": "phase", "phase": "exporting"})
    onnx = piper.export(voice_dir / "checkpoints" / "last.ckpt", store.model_path(cfg, spec.user, spec.voice),
                        arch=spec.arch, data_config=voice_dir / "config.json", voice=spec.voice, language=language)
    _write_training_json(voice_dir, spec, dataset, language, summary, job)
    job.set_status("succeeded", finished=time.time(), model=str(onnx), step=summary["steps"])
    return 0


def _write_training_json(voice_dir: Path, spec: Spec, dataset: Path, language: str, summary: dict, job: Job) -> None:
    import importlib.metadata as md

    from demod_voice.paths import atomic_write_text

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    previous = {}
    path = voice_dir / "training.json"
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
    report = dataset / "report.json"
    totals = json.loads(report.read_text(encoding="utf-8")).get("totals", {}) if report.is_file() else {}
    runs = previous.get("runs", []) + [{"job": job.id, "resume": spec.resume, "warmstart": spec.warmstart,
                                        "from_step": summary["first_step"], "to_step": summary["steps"],
                                        "seconds": summary["seconds"], "device": summary["device"]}]
    data = {
        "voice": spec.voice, "user": spec.user, "engine": spec.engine, "language": language,
        "data": {"dataset": str(dataset), "profile": spec.profile, "utterances": totals.get("kept"),
                 "seconds": totals.get("seconds_kept")},
        "settings": {"arch": spec.arch, "batch_size": spec.batch_size, "max_steps": spec.max_steps,
                     "max_epochs": spec.max_epochs, "accelerator": spec.accelerator,
                     "checkpoint_every": spec.checkpoint_every, "model": summary["model"]},
        "steps": summary["steps"], "epochs": summary["epochs"], "losses": summary["losses"], "runs": runs,
        "versions": {name: version(name) for name in ("demod-voice", "piper-tts", "torch", "lightning",
                                                      "monotonic-alignment-search", "onnx")},
        "files": {"model": f"{spec.voice}.onnx", "config": f"{spec.voice}.onnx.json",
                  "checkpoint": "checkpoints/last.ckpt"},
    }
    atomic_write_text(path, json.dumps(data, indent=2))


def main(argv: list[str]) -> int:
    stop = Stop()  # first: a cancel that comes while the trainer loads is honoured too
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    job = Job(Path(argv[0]))
    try:
        return run(job, stop)
    except DemodError as exc:
        job.set_status("failed", finished=time.time(), error=exc.message, hint=exc.hint, exit_code=exc.exit_code)
        print(f"error: {exc.message}" + (f"; {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the job records any failure; the traceback goes to log.txt
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        job.set_status("failed", finished=time.time(), error=f"training failed: {type(exc).__name__}: {first}",
                       hint=f"see {job.folder / 'log.txt'}", exit_code=EXIT_FAILURE)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
