"""One utterance: decode, check, clean, score, phonemize, write.

Runs in worker processes (``--workers``); every function here is a plain
top-level function over picklable data. Each finished utterance leaves a small
JSON record under ``OUTPUT/.resume/`` (written last, atomically), so a re-run
finds the work already done and skips it: its fingerprint covers the source
file (size, modification time), the transcript, the speaker and every setting
that changes the output.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from demod_voice import audio as audio_mod
from demod_voice import paths
from demod_voice.errors import InputError
from demod_voice.quality import score_audio

#: Loudness every utterance is normalised to (LJSpeech-like level), with peaks kept under -1 dBFS.
TARGET_LUFS = -20.0
#: More samples than this at full scale (0.1 %) marks a recording as clipped.
MAX_CLIPPING_RATIO = 0.001
#: Silence left before and after the speech when trimming.
TRIM_PAD_SECONDS = 0.05
#: Legacy piper_train spectrogram settings (its defaults: 1024-point FFT, hop 256).
FILTER_LENGTH, HOP_LENGTH, WIN_LENGTH = 1024, 256, 1024
RESUME_DIR = ".resume"
#: Bump when the processing changes in a way old records do not reflect.
PIPELINE_VERSION = 1


@dataclass(frozen=True)
class Settings:
    """Everything that decides what one utterance turns into."""

    output_dir: str
    sample_rate: int = 22050
    language: str = "en-us"
    min_duration: float = 0.5
    max_duration: float = 20.0
    min_quality: float = 0.4
    legacy: bool = True
    """Also write the legacy piper_train tensors (.pt audio and spectrogram)."""
    id_map_digest: str = ""

    def fingerprint(self) -> str:
        data = asdict(self)
        data.pop("output_dir")
        data["version"] = PIPELINE_VERSION
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    """One utterance to handle, as the main process hands it to a worker."""

    id: str
    audio_path: str
    text: str
    speaker: str | None
    inspect_only: bool = False


def job_fingerprint(job: Job, settings: Settings) -> str:
    data = [settings.fingerprint(), job.text, job.speaker, paths.file_identity(job.audio_path)]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:24]


def record_path(output_dir: Path, utt_id: str) -> Path:
    return Path(output_dir) / RESUME_DIR / f"{utt_id}.json"


def load_record(job: Job, settings: Settings) -> dict | None:
    """The finished result of an earlier run for this exact job, if any."""
    path = record_path(Path(settings.output_dir), job.id)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        fingerprint = job_fingerprint(job, settings)
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint:
        return None
    out = Path(settings.output_dir)
    for key in ("wav", "audio_norm_path", "audio_spec_path"):
        if record.get(key) and not (out / record[key]).is_file():
            return None
    return record


# --- the worker side ---------------------------------------------------------------

_PHONEMIZER = None


def init_worker(language: str, id_map: dict) -> None:
    """Per-process setup: espeak-ng is global C state, one instance per process."""
    global _PHONEMIZER
    from demod_voice.dataset.phonemes import Phonemizer

    _PHONEMIZER = Phonemizer(language, id_map)


def handle(job: Job, settings: Settings) -> dict:
    """Check one utterance and (unless ``inspect_only``) write its outputs; return its report entry."""
    result: dict = {"id": job.id, "status": "ok", "issues": []}

    def issue(code: str, message: str, severity: str = "error") -> None:
        result["issues"].append({"code": code, "severity": severity, "message": message})
        if severity == "error" and result["status"] == "ok":
            result["status"] = "invalid"

    try:
        raw = audio_mod.read(job.audio_path, what="recording")
    except InputError as exc:
        issue("unreadable_audio", exc.message)
        return _finish(job, settings, result)
    result["source_sample_rate"] = raw.sample_rate
    result["duration_in"] = round(raw.duration, 4)
    audio = audio_mod.resample(raw, settings.sample_rate)
    quality = score_audio(audio)
    result["quality"] = quality.to_dict()
    trimmed = audio_mod.trim_silence(audio, pad=TRIM_PAD_SECONDS)
    result["duration_out"] = round(trimmed.duration, 4)
    if quality.peak_db < -60.0 or trimmed.duration == 0:
        issue("silent", f"the recording is silent (peak {quality.peak_db:.0f} dBFS)")
    if quality.clipping_ratio > MAX_CLIPPING_RATIO:
        issue("clipped", f"{quality.clipping_ratio:.1%} of the samples are clipped at full scale "
                         f"(allowed: {MAX_CLIPPING_RATIO:.1%})")
    if result["status"] == "ok":
        if trimmed.duration < settings.min_duration:
            issue("too_short", f"{trimmed.duration:.2f} s of speech, below --min-duration {settings.min_duration:g} s")
        elif trimmed.duration > settings.max_duration:
            issue("too_long", f"{trimmed.duration:.2f} s of speech, above --max-duration {settings.max_duration:g} s")
    if job.inspect_only or result["status"] != "ok":
        return _finish(job, settings, result)
    if quality.score < settings.min_quality:
        issue("low_quality", f"quality {quality.score:.2f} is below --min-quality {settings.min_quality:g} "
                             f"(SNR {quality.snr_db:.0f} dB, silence {quality.silence_ratio:.0%})")
        result["status"] = "dropped"
        return _finish(job, settings, result)

    phonemized = _PHONEMIZER(job.text)
    result["phonemes"] = phonemized.sentences
    result["phoneme_ids"] = phonemized.ids
    if phonemized.missing:
        issue("missing_phonemes", "phonemes not in the id map were skipped: " + " ".join(phonemized.missing), "warning")
    if not any(phonemized.sentences):
        issue("no_phonemes", "the transcript produced no phonemes")
        return _finish(job, settings, result)

    normalized = audio_mod.loudness_normalize(trimmed, TARGET_LUFS)
    out = Path(settings.output_dir)
    wav_rel = f"wavs/{job.id}.wav"
    audio_mod.write(normalized, out / wav_rel, "wav")
    result["wav"] = wav_rel
    if settings.legacy:
        result["audio_norm_path"], result["audio_spec_path"] = _write_legacy_tensors(normalized, out, job.id)
    return _finish(job, settings, result)


def _finish(job: Job, settings: Settings, result: dict) -> dict:
    result.update(text=job.text, speaker=job.speaker, source=job.audio_path)
    if not job.inspect_only:
        result["fingerprint"] = job_fingerprint(job, settings)
        path = record_path(Path(settings.output_dir), job.id)
        paths.atomic_write_bytes(path, json.dumps(result, ensure_ascii=False).encode("utf-8"))
    return result


def _write_legacy_tensors(audio, out: Path, utt_id: str) -> tuple[str, str]:
    """The float audio and its linear spectrogram as torch tensors, as piper_train's dataset loads them."""
    try:
        import torch
    except ImportError:
        from demod_voice.errors import NotAvailableError

        raise NotAvailableError("the legacy piper_train output needs torch, which is not installed",
                                hint="install torch, or pass --trainer piper1") from None
    # Parallelism is across utterances (--workers); torch's own threads only fight each other here.
    torch.set_num_threads(1)
    samples = torch.from_numpy(audio.samples.copy())
    spec = linear_spectrogram(samples)
    norm_rel, spec_rel = f"cache/{utt_id}.pt", f"cache/{utt_id}.spec.pt"
    with audio_mod.atomic_path(out / norm_rel) as tmp:
        torch.save(samples, tmp)
    with audio_mod.atomic_path(out / spec_rel) as tmp:
        torch.save(spec, tmp)
    return norm_rel, spec_rel


def linear_spectrogram(samples):
    """Magnitude STFT (n_fft 1024, hop 256, Hann window, reflect padding, no centring) -> [513, frames]."""
    import torch

    pad = (FILTER_LENGTH - HOP_LENGTH) // 2
    padded = torch.nn.functional.pad(samples.view(1, 1, -1), (pad, pad), mode="reflect").view(-1)
    stft = torch.stft(padded, FILTER_LENGTH, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                      window=torch.hann_window(WIN_LENGTH), center=False, return_complex=True)
    return torch.sqrt(stft.real.pow(2) + stft.imag.pow(2) + 1e-6)
