"""Job-file parsing and validation, in process (no synthesis)."""

from __future__ import annotations

import pytest

from demod_voice import config
from demod_voice.batch import jobs
from demod_voice.batch.runner import Scheduler
from demod_voice.errors import InputError
from tests.batch.batchutil import write_csv, write_jsonl


@pytest.fixture
def cfg(isolated_home):
    return config.load()


def test_original_five_columns_without_header(jobdir, speech_wav, cfg):
    (jobdir / "refs").mkdir()
    ref = jobdir / "refs" / "me.wav"
    ref.write_bytes(speech_wav.read_bytes())
    path = write_csv(jobdir / "lines.csv", None, [
        ["refs/me.wav", "Hello, world.", "out/1.wav", "de", "narrator"],
        ["refs/me.wav", "Second line.", "out/2.wav"],
    ])
    loaded = jobs.load(path, cfg)
    assert not loaded.invalid
    first, second = loaded.jobs
    assert (first.engine, first.text, first.language, first.speaker) == ("xtts", "Hello, world.", "de", "narrator")
    assert first.reference == [ref.absolute()]
    assert first.output == (jobdir / "out" / "1.wav").absolute()
    assert second.language == cfg.get("xtts.language")  # the default language fills the optional column
    assert first.group == second.group  # one conditioning for both


def test_original_columns_with_header_and_multiline_text(jobdir, speech_wav, cfg):
    path = write_csv(jobdir / "lines.csv", ["reference", "text", "output", "language", "speaker"], [
        [str(speech_wav), "One line\nthat spans two.", "a.wav", "en", ""],
        ["missing.wav", "x", "b.wav", "en", ""],
    ])
    loaded = jobs.load(path, cfg)
    assert [j.line for j in loaded.jobs] == [2]
    assert loaded.jobs[0].text == "One line\nthat spans two."
    (bad,) = loaded.invalid
    assert bad.line == 4  # the quoted newline makes the first record two lines long
    assert "reference audio not found" in bad.error.message and "missing.wav" in bad.error.message


def test_extended_columns_and_options(jobdir, joe_voice, cfg):
    path = write_csv(jobdir / "jobs.csv", ["voice", "text", "output", "speed", "noise_scale", "format", "id"], [
        [str(joe_voice), "Piper inferred from the voice.", "x.out", "1.25", "0", "flac", "intro"],
        [str(joe_voice), "Too fast.", "y.wav", "99", "", "", ""],
        [str(joe_voice), "Not a number.", "z.wav", "", "loud", "", ""],
    ])
    loaded = jobs.load(path, cfg)
    (job,) = loaded.jobs
    assert (job.engine, job.fmt, job.id) == ("piper", "flac", "intro")
    assert job.options == {"speed": 1.25, "noise_scale": 0.0}
    messages = {bad.line: bad.error.message for bad in loaded.invalid}
    assert "option 'speed' (from job file) expects a value <= 4.0" in messages[3]  # the schema's range
    assert "option 'noise_scale' (from job file) expects a number" in messages[4]


def test_jsonl_records_and_broken_lines(jobdir, joe_voice, speech_wav, cfg):
    path = write_jsonl(jobdir / "jobs.jsonl", [
        {"voice": str(joe_voice), "text": "Hi.", "output": "a.wav", "options": {"noise_w": 0}},
        "{not json",
        {"engine": "xtts", "reference": [str(speech_wav), str(speech_wav)], "text": "Hi.", "output": "b.wav"},
        {"voice": str(joe_voice), "text": "Hi.", "output": "c.wav", "colour": "red"},
        {"voice": str(joe_voice), "text": "Hi.", "output": "a.wav"},
        ["a", "list"],
        {"engine": "festival", "text": "Hi.", "output": "d.wav"},
    ])
    loaded = jobs.load(path, cfg)
    assert [j.line for j in loaded.jobs] == [1, 3]
    assert loaded.jobs[0].options == {"noise_w": 0.0}
    assert len(loaded.jobs[1].reference) == 2
    messages = {bad.line: bad.error.message for bad in loaded.invalid}
    assert set(messages) == {2, 4, 5, 6, 7}
    assert "not valid JSON" in messages[2]
    assert "unknown field 'colour'" in messages[4]
    assert "also written by line 1" in messages[5]
    assert "expected a JSON object" in messages[6]
    assert "unknown engine 'festival'" in messages[7]


def test_unusable_files_raise(jobdir, cfg):
    with pytest.raises(InputError, match="not found"):
        jobs.load(jobdir / "nope.csv", cfg)
    with pytest.raises(InputError, match="unknown column 'colour'"):
        jobs.load(write_csv(jobdir / "a.csv", ["text", "output", "colour"], [["x", "y.wav", "red"]]), cfg)
    with pytest.raises(InputError, match="no 'output' column"):
        jobs.load(write_csv(jobdir / "b.csv", ["voice", "text"], [["v", "x"]]), cfg)
    (jobdir / "c.csv").write_text("# only a comment\n\n")
    with pytest.raises(InputError, match="no jobs"):
        jobs.load(jobdir / "c.csv", cfg)
    (jobdir / "d.csv").write_bytes(b"text,output\n\xff\xfe,x.wav\n")
    with pytest.raises(InputError, match="not UTF-8"):
        jobs.load(jobdir / "d.csv", cfg)


def test_hash_follows_everything_that_shapes_the_output(jobdir, joe_voice, cfg):
    def one(text, noise="0", fmt="wav"):
        path = write_csv(jobdir / "h.csv", ["voice", "text", "output", "noise_scale", "format"],
                         [[str(joe_voice), text, "h.out", noise, fmt]])
        return jobs.load(path, cfg).jobs[0].hash

    base = one("Hello.")
    assert base == one("Hello.")
    assert len({base, one("Hello!"), one("Hello.", noise="0.5"), one("Hello.", fmt="flac")}) == 4


def test_scheduler_keeps_workers_on_their_group():
    class J:
        def __init__(self, group, n):
            self.group, self.n = (group,), n

    pending = [J("a", 1), J("b", 2), J("a", 3), J("b", 4), J("a", 5), J("c", 6)]
    sched = Scheduler(pending)
    assert sched.next(0).n == 1 and sched.next(1).n == 2
    assert sched.next(0).n == 3 and sched.next(1).n == 4 and sched.next(0).n == 5
    assert sched.next(0).n == 6  # group a is finished: worker 0 takes the group nobody holds
    assert sched.next(1) is None and len(sched) == 0


def test_voice_paths_are_relative_to_the_job_file(jobdir, joe_voice, cfg):
    voices = jobdir / "voices"
    voices.mkdir()
    (voices / "joe.onnx").symlink_to(joe_voice)
    (voices / "joe.onnx.json").symlink_to(f"{joe_voice}.json")
    path = write_csv(jobdir / "jobs.csv", ["voice", "text", "output"], [["voices/joe.onnx", "Hi.", "a.wav"]])
    (job,) = jobs.load(path, cfg).jobs
    assert job.model == str(joe_voice.resolve())


def test_column_typos_get_a_did_you_mean(jobdir, cfg):
    """#34 item 6: a misspelt column, field or option names the closest known one."""
    with pytest.raises(InputError, match=r"unknown column 'Vioce' \(did you mean voice\?\)"):
        jobs.load(write_csv(jobdir / "t.csv", ["Vioce", "text", "output"], [["v", "x", "y.wav"]]), cfg)
    # a header without text/output spelt right is still a header (not a headerless reference,text,output row)
    with pytest.raises(InputError, match=r"unknown column 'txt' \(did you mean text\?\)"):
        jobs.load(write_csv(jobdir / "u.csv", ["voice", "txt", "outptu"], [["v", "x", "y.wav"]]), cfg)
    (jobdir / "t.jsonl").write_text('{"text": "x", "output": "a.wav", "sped": 2}\n'
                                     '{"text": "x", "output": "b.wav", "options": {"lenght_scale": 2}}\n')
    messages = {line: str(error) for line, error in jobs.read_records(jobdir / "t.jsonl")
                if isinstance(error, Exception)}
    assert "unknown field 'sped' (did you mean speed" in messages[1]
    assert "unknown option 'lenght_scale' (did you mean length_scale" in messages[2]
