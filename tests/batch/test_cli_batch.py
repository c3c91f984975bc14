"""``demod-voice batch`` through the real CLI: mixed files, resume, reports, --fail-fast, exit codes."""

from __future__ import annotations

import pytest

from tests.batch.batchutil import PIPER_HEADER, by_status, decode, piper_rows, read_report, write_csv, write_jsonl


def test_mixed_file_runs_valid_jobs_and_reports_the_rest(cli, jobdir, joe_voice, speech_wav):
    header = [*PIPER_HEADER, "reference", "input", "model", "speaker"]
    rows = [r + ["", "", "", ""] for r in piper_rows(joe_voice, 3)]
    rows += [
        ["piper", "no-such-voice", "Unknown voice.", "out/bad1.wav", "", "", "", "", "", ""],  # line 5: invalid
        ["piper", str(joe_voice), "Bad speaker.", "out/bad2.wav", "", "", "", "", "", "3"],  # 6: single-speaker voice
        ["xtts", "", "Cloned line.", "out/clone.wav", "", "", str(speech_wav), "", "", ""],  # 7: XTTS, no model here
        ["rvc", "", "", "out/conv.wav", "", "", "", str(speech_wav), "nobody.pth", ""],  # 8: RVC, no model here
        ["piper", str(joe_voice), "Clash.", "out/line00.wav", "0", "0", "", "", "", ""],  # 9: duplicate output
    ]
    path = write_csv(jobdir / "mixed.csv", header, rows)
    proc = cli("batch", path, "--workers", "2", "--report", jobdir / "report.json")
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "line 5: invalid: unknown Piper voice 'no-such-voice'" in err
    assert "line 6: invalid: voice en_US-joe-medium has a single speaker" in err
    assert "line 9: invalid: output" in err and "also written by line 2" in err
    report = read_report(jobdir / "report.json")
    status = by_status(report)
    assert status["done"] == {2, 3, 4}
    assert status["invalid"] == {5, 6, 9}
    assert status["failed"] == {7, 8}  # XTTS/RVC jobs fail one by one with a clear error, the run goes on
    jobs = {j["line"]: j for j in report["jobs"]}
    for line in (7, 8):
        assert jobs[line]["error"]["message"] and "unexpected" not in jobs[line]["error"]["message"]
    for line in (2, 3, 4):
        assert jobs[line]["audio_seconds"] > 0.5 and jobs[line]["seconds"] > 0
        decode(jobdir / "out" / f"line{line - 2:02d}.wav")
    assert report["summary"] == {"done": 3, "skipped": 0, "failed": 2, "invalid": 3, "not_run": 0, "pending": 0,
                                 "total": 8}
    produced = sorted(p.name for p in (jobdir / "out").iterdir())
    assert produced == ["line00.wav", "line01.wav", "line02.wav"]  # nothing for failed jobs, no temp files

    # A re-run skips what is done and retries the rest.
    before = {p.name: p.stat().st_mtime_ns for p in (jobdir / "out").iterdir()}
    proc = cli("batch", path, "--report", jobdir / "report2.json", "-q")
    assert proc.returncode == 1
    status = by_status(read_report(jobdir / "report2.json"))
    assert status["skipped"] == {2, 3, 4} and status["failed"] == {7, 8}
    assert before == {p.name: p.stat().st_mtime_ns for p in (jobdir / "out").iterdir()}
    assert "%|" not in proc.stderr.decode()  # -q: no progress bar


def test_dry_run_validates_only(cli, jobdir, joe_voice):
    path = write_csv(jobdir / "jobs.csv", PIPER_HEADER, piper_rows(joe_voice, 2) +
                     [["piper", str(joe_voice), "", "out/x.wav", "", ""]])
    proc = cli("batch", path, "--dry-run", "--report", jobdir / "r.json")
    assert proc.returncode == 1
    assert "line 4: invalid: no text to speak" in proc.stderr.decode()
    report = read_report(jobdir / "r.json")
    assert report["dry_run"] and by_status(report) == {"pending": {2, 3}, "invalid": {4}}
    assert not (jobdir / "out").exists()
    assert not (jobdir / "jobs.csv.batch-state.sqlite").exists()


def test_fail_fast_stops_at_the_first_failure(cli, jobdir, joe_voice):
    rows = piper_rows(joe_voice, 1) + [["piper", str(joe_voice), "...", "out/fail.wav", 0, 0]] + \
        piper_rows(joe_voice, 3, start=1)
    path = write_csv(jobdir / "jobs.csv", PIPER_HEADER, rows)
    proc = cli("batch", path, "--fail-fast", "--report", jobdir / "r.json")
    assert proc.returncode == 1
    assert "stopped after the first failure" in proc.stderr.decode()
    report = read_report(jobdir / "r.json")
    assert by_status(report) == {"done": {2}, "failed": {3}, "not_run": {4, 5, 6}}
    assert report["stopped_by"] == "fail-fast"
    assert sorted(p.name for p in (jobdir / "out").iterdir()) == ["line00.wav"]

    # An invalid row with --fail-fast runs nothing at all.
    bad = write_csv(jobdir / "bad.csv", PIPER_HEADER, piper_rows(joe_voice, 1, outdir="o2") +
                    [["piper", "nope", "x", "o2/x.wav", "", ""]])
    proc = cli("batch", bad, "--fail-fast")
    assert proc.returncode == 1 and not (jobdir / "o2").exists()


def test_original_five_column_csv(cli, jobdir, speech_wav):
    """reference,text,output,language,speaker -- unchanged -- means XTTS jobs."""
    (jobdir / "ref.wav").write_bytes(speech_wav.read_bytes())
    path = write_csv(jobdir / "lines.csv", None, [
        ["ref.wav", "Hello there, this is a test.", "out/one.wav", "en", "narrator"],
        ["ref.wav", "And a second line.", "out/two.wav", "en", ""],
        ["ref.wav", "Only three columns.", "out/three.wav"],
    ])
    proc = cli("batch", path, "--dry-run", "--report", jobdir / "dry.json")
    assert proc.returncode == 0, proc.stderr.decode()
    assert by_status(read_report(jobdir / "dry.json")) == {"pending": {1, 2, 3}}
    # No XTTS model is installed in the isolated home: every job fails with a clear message, nothing crashes.
    proc = cli("batch", path, "--report", jobdir / "run.json")
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "unexpected" not in err
    report = read_report(jobdir / "run.json")
    assert by_status(report) == {"failed": {1, 2, 3}}
    assert all(j["error"]["message"] for j in report["jobs"])
    assert not (jobdir / "out").exists() or not list((jobdir / "out").iterdir())


def test_jsonl_file_and_no_resume(cli, jobdir, joe_voice):
    path = write_jsonl(jobdir / "jobs.jsonl", [
        {"voice": str(joe_voice), "text": "A line from JSON.", "output": "out/a.ogg",
         "options": {"noise_scale": 0, "noise_w": 0}},
        {"engine": "piper", "voice": str(joe_voice), "text": "Another one.", "output": "out/b.wav", "speed": 1.5},
    ])
    proc = cli("batch", path, "-q", "--report", jobdir / "r.json")
    assert proc.returncode == 0 and proc.stderr == b""
    assert by_status(read_report(jobdir / "r.json")) == {"done": {1, 2}}
    _, sr = decode(jobdir / "out" / "a.ogg")
    assert sr == 22050
    # Changing a job's text changes its hash: only that job runs again; --no-resume runs everything.
    path.write_text(path.read_text().replace("Another one.", "Another two."))
    proc = cli("batch", path, "--report", jobdir / "r.json")
    assert by_status(read_report(jobdir / "r.json")) == {"skipped": {1}, "done": {2}}
    proc = cli("batch", path, "--no-resume", "--dry-run", "--report", jobdir / "r.json")
    assert by_status(read_report(jobdir / "r.json")) == {"pending": {1, 2}}


@pytest.mark.parametrize("content, message", [
    (None, "job file not found"),
    ("voice,text\nx,y\n", "no 'output' column"),
    ("# nothing\n", "no jobs"),
])
def test_unusable_file_exits_2(cli, jobdir, content, message):
    path = jobdir / "jobs.csv"
    if content is not None:
        path.write_text(content)
    proc = cli("batch", path)
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("error: ") and message in proc.stderr.decode()


def test_text_and_output_only_uses_the_default_piper_voice(cli, jobdir):
    """A CSV with just text and output speaks with piper.default_voice (docs/batch.md); issue 25 item 5."""
    path = jobdir / "lines.csv"
    path.write_text("text,output\nHello.,a.wav\nSecond line.,b.wav\n")
    proc = cli("batch", path, "--report", jobdir / "r.json")
    assert proc.returncode == 0, proc.stderr.decode()
    report = read_report(jobdir / "r.json")
    assert by_status(report) == {"done": {2, 3}}
    if all("engine" in j for j in report["jobs"]):
        assert {j["engine"] for j in report["jobs"]} == {"piper"}
    for name in ("a.wav", "b.wav"):
        data, sr = decode(jobdir / name)
        assert sr == 22050  # the bundled default voice's rate
