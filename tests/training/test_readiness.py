"""``train readiness``: counts, seconds, scores and thresholds of a real dataset and a real profile."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli
from tests.training.conftest import clean_env

pytestmark = pytest.mark.slow


def _readiness(home, *args, config: str | None = None):
    extra = []
    if config is not None:
        (home / "c.yaml").write_text(config)
        extra = ["--config", home / "c.yaml"]
    return run_cli("train", "readiness", *args, *extra, env=clean_env(home))


def test_dataset_readiness_json(dataset, tmp_path):
    report_file = json.loads((dataset / "report.json").read_text())
    kept = [u for u in report_file["utterances"] if u["status"] == "ok"]

    proc = _readiness(tmp_path, "--dataset", dataset, "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert report["samples"] == len(kept) == 8
    assert report["seconds"] == pytest.approx(sum(u["duration_out"] for u in kept), abs=0.02)
    assert report["good_samples"] == sum(u["quality"]["score"] >= 0.8 for u in kept)
    # 8 short sentences are far from 80 % of dataset.min_total_seconds (600 s): not ready, and it says why.
    assert report["ready"] is False
    assert report["needed_seconds"] == pytest.approx(480.0)
    assert any("more of clean speech" in tip for tip in report["recommendations"])

    # With a lower target the same data is ready (80 % of 20 s = 16 s).
    proc = _readiness(tmp_path, "--dataset", dataset, "--json", config="dataset:\n  min_total_seconds: 20\n")
    report = json.loads(proc.stdout)
    assert report["needed_seconds"] == pytest.approx(16.0)
    assert report["ready"] is (report["good_seconds"] >= 16.0)


def test_gpt_sovits_names_the_best_reference(dataset, tmp_path):
    proc = _readiness(tmp_path, "--dataset", dataset, "--engine", "gpt-sovits", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    kept = {u["id"]: u for u in json.loads((dataset / "report.json").read_text())["utterances"]}
    ids = report["reference"]["ids"]
    assert ids and all(kept[i]["quality"]["score"] >= 0.8 for i in ids)
    assert 5.0 <= report["reference"]["seconds"] <= 10.0
    assert report["reference"]["seconds"] == pytest.approx(sum(kept[i]["duration_out"] for i in ids), abs=0.02)
    assert report["ready"] is True

    text = _readiness(tmp_path, "--dataset", dataset, "--engine", "rvc").stdout.decode()
    assert "NOT READY" in text and "RVC" in text


def test_profile_readiness_and_reference(recordings, tmp_path):
    env = clean_env(tmp_path)
    assert run_cli("voices", "add", "anna", env=env).returncode == 0
    for wav in sorted((recordings / "wavs").glob("*.wav"))[:4]:
        proc = run_cli("voices", "samples", "add", "anna", wav, env=env)
        assert proc.returncode == 0, proc.stderr.decode()
    proc = run_cli("train", "readiness", "--profile", "anna", "--engine", "gpt-sovits", "--json", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout)
    assert report["samples"] == 4 and report["untranscribed"] == 4
    # The named reference is what 'voices reference auto --min 5 --max 10' then chooses.
    proc = run_cli("voices", "reference", "auto", "anna", "--min", "5", "--max", "10", env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(proc.stdout.decode().split()) == sorted(report["reference"]["ids"])


def test_bad_input_is_exit_2(tmp_path):
    proc = _readiness(tmp_path, "--dataset", tmp_path / "nope", "--json")
    assert proc.returncode == 2 and b"not found" in proc.stderr
    proc = _readiness(tmp_path, "--profile", "nobody")
    assert proc.returncode == 2
