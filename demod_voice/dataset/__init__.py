"""Piper dataset preparation (``piper-preprocess``).

``prepare(options)`` turns a folder of recordings and transcripts into a
training set for both Piper trainers. The steps, one module each:

1. ``layouts`` -- read the input (LJSpeech ``metadata.csv`` or ``.wav`` +
   ``.txt`` pairs) and find structural problems per row, before any decoding;
2. ``transcribe`` -- fill missing transcripts with faster-whisper (optional);
3. ``process`` -- per utterance, in ``--workers`` processes: decode, mono,
   resample, check (silence, clipping, duration), trim, score
   (``demod_voice.quality``), phonemize (``phonemes``), loudness-normalise and
   write; a record per finished utterance makes re-runs resume;
4. ``writers`` -- ``metadata.csv``, ``config.json``, ``dataset.jsonl``,
   ``report.json`` and ``summary.txt``.
"""

from demod_voice.dataset.pipeline import Options, Result, prepare

__all__ = ["Options", "Result", "prepare"]
