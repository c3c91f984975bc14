"""Is there enough good audio to train? Counts, seconds and quality scores of a profile or a dataset.

Scores are the ones already stored: a profile sample's ``score.overall`` (``quality.score_reference``), a
``piper-preprocess`` utterance's ``quality.score`` (``quality.score_audio``). Thresholds (config ``training.*``,
``dataset.min_total_seconds``):

* piper: good audio of at least ``training.ready_fraction`` (80 %) of ``dataset.min_total_seconds``;
* gpt-sovits: 5-10 s of samples scored at least ``training.min_quality`` (0.8), the best of them named as the
  reference (``voices reference auto NAME --min 5 --max 10`` chooses the same);
* rvc: about ``training.rvc_min_seconds`` (10 min) of good audio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from demod_voice.errors import InputError

ENGINES = ("piper", "gpt-sovits", "rvc")
#: GPT-SoVITS reference length (seconds) its authors recommend.
REFERENCE_MIN_S, REFERENCE_MAX_S = 5.0, 10.0


@dataclass
class Item:
    """One recording: its id, length, score and whether it has a transcript."""

    id: str
    seconds: float
    score: float
    transcript: bool
    added: float = 0.0


def profile_items(cfg, name: str, user: str) -> list[Item]:
    from demod_voice.voices import store_for

    store = store_for(cfg, user)
    store.get(name)  # a clear error for an unknown profile
    return [Item(s.id, float(s.duration), float(s.score.get("overall", 0.0)), bool(s.transcript), s.added)
            for s in store.samples(name)]


def dataset_items(folder: Path) -> list[Item]:
    """The kept utterances of a ``piper-preprocess`` dataset (from its ``report.json``)."""
    folder = Path(folder).expanduser()
    report = folder / "report.json"
    if not folder.is_dir():
        raise InputError(f"dataset folder not found: {folder}", hint="pass the --output-dir of piper-preprocess")
    if not report.is_file() or not (folder / "metadata.csv").is_file():
        raise InputError(f"{folder} is not a piper-preprocess dataset (no report.json and metadata.csv)",
                         hint=f"prepare it with: demod-voice piper-preprocess --input-dir RECORDINGS "
                              f"--output-dir {folder}")
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        utterances = [u for u in data["utterances"] if u.get("status") == "ok"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read {report}: {exc}", hint="run piper-preprocess again") from None
    return [Item(str(u["id"]), float(u.get("duration_out", 0.0)), float((u.get("quality") or {}).get("score", 0.0)),
                 bool(u.get("text"))) for u in utterances]


def best_reference(items: list[Item], min_quality: float) -> list[Item]:
    """The best-scored items totalling 5-10 s (the rule ``voices reference auto`` applies)."""
    from demod_voice.voices import Sample, choose_reference

    good = [i for i in items if i.score >= min_quality]
    samples = [Sample(id=i.id, duration=i.seconds, sample_rate=0, score={"overall": i.score}, added=i.added)
               for i in good]
    chosen = set(choose_reference(samples, REFERENCE_MIN_S, REFERENCE_MAX_S))
    return [i for i in good if i.id in chosen]


def assess(cfg, engine: str, items: list[Item], source: dict) -> dict:
    """The readiness report (``train readiness --json``, ``GET /api/training/readiness``)."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}'", hint="use " + ", ".join(ENGINES))
    min_quality = cfg.get("training.min_quality")
    good = [i for i in items if i.score >= min_quality]
    seconds = round(sum(i.seconds for i in items), 2)
    good_seconds = round(sum(i.seconds for i in good), 2)
    out = {"engine": engine, **source, "samples": len(items), "seconds": seconds, "good_samples": len(good),
           "good_seconds": good_seconds, "min_quality": min_quality,
           "untranscribed": sum(1 for i in items if not i.transcript)}
    tips: list[str] = []
    if engine == "piper":
        target = float(cfg.get("dataset.min_total_seconds"))
        needed = round(cfg.get("training.ready_fraction") * target, 2)
        ready = good_seconds >= needed and good_seconds > 0
        out.update(target_seconds=target, needed_seconds=needed)
        if not ready:
            tips.append(f"record {_span(needed - good_seconds)} more of clean speech scored >= {min_quality:g}: "
                        f"Piper needs {_span(needed)} ({cfg.get('training.ready_fraction'):.0%} of "
                        f"dataset.min_total_seconds = {_span(target)}) to fine-tune, 1-2 hours for a new voice")
        if out["untranscribed"]:
            tips.append(f"{out['untranscribed']} recording(s) have no transcript: Whisper writes them "
                        "(set dataset.whisper_model or stt.model), or add them yourself")
        tips.append("train on a GPU: a fine-tune from a published voice takes about 1000 epochs at batch 32")
    elif engine == "gpt-sovits":
        chosen = best_reference(items, min_quality)
        total = round(sum(i.seconds for i in chosen), 2)
        ready = REFERENCE_MIN_S <= total <= REFERENCE_MAX_S
        out["reference"] = {"ids": [i.id for i in chosen], "seconds": total}
        if ready:
            command = (f"demod-voice voices reference auto {source['profile']} --min 5 --max 10"
                       if source.get("profile") else "use these recordings as the reference")
            tips.append(f"reference: {', '.join(out['reference']['ids'])} ({total:g} s); {command}")
        else:
            tips.append(f"GPT-SoVITS wants 5-10 s of reference scored >= {min_quality:g}; the best usable "
                        f"recordings total {total:g} s: record a clean 5-10 s sample")
    else:
        needed = float(cfg.get("training.rvc_min_seconds"))
        ready = good_seconds >= needed
        out["needed_seconds"] = needed
        if not ready:
            tips.append(f"record {_span(needed - good_seconds)} more: RVC training wants about {_span(needed)} of "
                        "clean speech (train it in RVC WebUI or Applio, then 'demod-voice rvc add')")
    low = len(items) - len(good)
    if low:
        tips.append(f"{low} recording(s) score below {min_quality:g} (noise, clipping, silence): re-record or "
                    "remove them")
    out["ready"] = bool(ready)
    out["recommendations"] = tips
    return out


def _span(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def check(cfg, engine: str, *, profile: str | None = None, dataset: str | Path | None = None,
          user: str | None = None) -> dict:
    """Readiness of a profile (of ``user``) or a dataset folder."""
    from demod_voice.voices import DEFAULT_USER

    if (profile is None) == (dataset is None):
        raise InputError("give a profile or a dataset", hint="--profile NAME or --dataset DIR")
    if profile is not None:
        return assess(cfg, engine, profile_items(cfg, profile, user or DEFAULT_USER), {"profile": profile})
    folder = Path(dataset).expanduser().resolve()
    return assess(cfg, engine, dataset_items(folder), {"dataset": str(folder)})


def render(report: dict) -> str:
    """The readable form of ``check``'s report."""
    what = f"profile {report['profile']}" if report.get("profile") else f"dataset {report.get('dataset')}"
    lines = [f"{report['engine']} training readiness of {what}: {'READY' if report['ready'] else 'NOT READY'}",
             f"  samples: {report['samples']} ({_span(report['seconds'])}), "
             f"{report['good_samples']} scored >= {report['min_quality']:g} ({_span(report['good_seconds'])})"]
    if "needed_seconds" in report:
        lines.append(f"  needed:  {_span(report['needed_seconds'])} of good audio")
    lines += [f"  - {tip}" for tip in report["recommendations"]]
    return "\n".join(lines) + "\n"
