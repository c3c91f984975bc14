"""The Ray runner (a local Ray started by the CLI) produces what the local runner produces."""

from __future__ import annotations

import shutil

import pytest

from tests.batch.batchutil import PIPER_HEADER, by_status, decode, piper_rows, read_report, write_csv

pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_runner_matches_local_runner(cli, jobdir, joe_voice):
    rows = piper_rows(joe_voice, 4) + [
        ["piper", str(joe_voice), "...", "out/fails.wav", 0, 0],
        ["piper", "no-such-voice", "Invalid.", "out/invalid.wav", "", ""],
    ]
    path = write_csv(jobdir / "jobs.csv", PIPER_HEADER, rows)
    proc = cli("batch", path, "--workers", "1", "--report", jobdir / "local.json")
    assert proc.returncode == 1, proc.stderr.decode()
    shutil.copytree(jobdir / "out", jobdir / "local-out")

    proc = cli("batch", path, "--ray", "--workers", "2", "--no-resume", "--report", jobdir / "ray.json")
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "line 6: failed: the text produced no speech" in err
    local, ray = read_report(jobdir / "local.json"), read_report(jobdir / "ray.json")
    assert ray["runner"] == "ray" and local["runner"] == "local"
    assert by_status(ray) == by_status(local) == {"done": {2, 3, 4, 5}, "failed": {6}, "invalid": {7}}
    for i in range(4):
        name = f"line{i:02d}.wav"
        ours, sr = decode(jobdir / "out" / name)
        theirs, sr2 = decode(jobdir / "local-out" / name)
        assert sr == sr2 and ours.shape == theirs.shape
        assert float(abs(ours - theirs).max()) < 1e-3  # zero noise scales: the same audio
    assert sorted(p.name for p in (jobdir / "out").iterdir()) == [f"line{i:02d}.wav" for i in range(4)]

    # The Ray run recorded its outputs too: a local re-run skips every job.
    proc = cli("batch", path, "--dry-run", "--report", jobdir / "again.json")
    assert by_status(read_report(jobdir / "again.json")) == {"skipped": {2, 3, 4, 5}, "pending": {6}, "invalid": {7}}
