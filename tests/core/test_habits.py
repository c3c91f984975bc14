"""Habits from piper, coqui tts and other CLIs, and progress on a terminal (issue 25 items 6 and 7).

Everything runs the real CLI with the real Joe voice; the progress tests give the process a real
pseudo-terminal as stderr.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import cli_env, run_cli_on_tty

TEXT = "One small test. Then another one."


def _same_audio(a, b) -> None:
    assert a.read_bytes() == b.read_bytes()


def test_piped_text_without_a_text_argument(cli, tmp_path):
    """`echo hi | demod-voice piper-infer VOICE -o x.wav` (piper reads standard input by default)."""
    out = tmp_path / "x.wav"
    proc = cli("piper-infer", "en_US-joe-medium", "-o", out, "--noise-scale", "0", "--noise-w", "0", input="hi\n")
    assert proc.returncode == 0, proc.stderr.decode()
    same = tmp_path / "same.wav"
    assert cli("piper-infer", "en_US-joe-medium", "hi", "-o", same, "--noise-scale", "0", "--noise-w", "0"
               ).returncode == 0
    _same_audio(out, same)


def test_empty_standard_input_is_no_text(cli, tmp_path):
    proc = cli("piper-infer", "en_US-joe-medium", "-o", tmp_path / "x.wav")  # stdin: /dev/null
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "error: no text given" in err and "pipe the text in" in err, err
    assert not (tmp_path / "x.wav").exists()


def test_piper_flags_are_aliases(cli, tmp_path):
    """piper's -m, -f, --noise-w-scale and --output-raw give the bytes of our own flags."""
    ours = tmp_path / "ours.wav"
    theirs = tmp_path / "theirs.wav"
    assert cli("piper-infer", "en_US-joe-medium", TEXT, "-o", ours, "--noise-scale", "0", "--noise-w", "0"
               ).returncode == 0
    proc = cli("piper-infer", "-m", "en_US-joe-medium", "-f", theirs, "--noise-scale", "0", "--noise-w-scale", "0",
               TEXT)
    assert proc.returncode == 0, proc.stderr.decode()
    _same_audio(ours, theirs)
    proc = cli("piper-infer", "--model", "en_US-joe-medium", "--output-file", tmp_path / "long.wav", TEXT,
               "--noise-scale", "0", "--noise-w", "0")
    assert proc.returncode == 0, proc.stderr.decode()
    _same_audio(ours, tmp_path / "long.wav")
    raw = cli("piper-infer", "-m", "en_US-joe-medium", "--output-raw", "--noise-scale", "0", "--noise-w", "0",
              input=TEXT)
    stream = cli("piper-infer", "en_US-joe-medium", TEXT, "--stream", "--noise-scale", "0", "--noise-w", "0")
    assert raw.returncode == 0 and stream.returncode == 0, raw.stderr.decode()
    assert raw.stdout == stream.stdout and len(raw.stdout) > 22050  # raw 16-bit PCM, over half a second
    # --cuda is piper's --gpu: without a GPU it falls back to the CPU with a notice, as --gpu does.
    proc = cli("piper-infer", "-m", "en_US-joe-medium", "-f", tmp_path / "cuda.wav", TEXT, "--cuda",
               "--noise-scale", "0", "--noise-w", "0")
    assert proc.returncode == 0, proc.stderr.decode()
    _same_audio(ours, tmp_path / "cuda.wav")


def test_model_flag_conflicts_are_usage_errors(cli, tmp_path):
    proc = cli("piper-infer", "-m", "en_US-joe-medium", "one", "two", "-o", tmp_path / "x.wav")
    assert proc.returncode == 2 and "at most one positional argument" in proc.stderr.decode()
    proc = cli("piper-infer", "-o", tmp_path / "x.wav", input="text")
    assert proc.returncode == 2 and "no voice given" in proc.stderr.decode()


def test_coqui_flags_parse_like_ours():
    """coqui tts's --speaker_wav, --language_idx and --out_path are the same options as ours."""
    from demod_voice.cli import build_parser

    parser = build_parser()
    ours = parser.parse_args(["xtts-zero-shot", "Hello.", "--reference", "me.wav", "--reference", "b.wav",
                              "--language", "de", "--output", "o.wav"])
    theirs = parser.parse_args(["xtts-zero-shot", "Hello.", "--speaker_wav", "me.wav", "--speaker_wav", "b.wav",
                                "--language_idx", "de", "--out_path", "o.wav"])
    assert vars(ours) == vars(theirs)
    assert ours.references == ["me.wav", "b.wav"] and ours.language == "de" and ours.output == "o.wav"


def test_list_models_flag_is_models_list(cli):
    """coqui's `tts --list_models`: our `--list_models` prints what `models list` prints."""
    listed = cli("models", "list")
    flag = cli("--list_models")
    assert listed.returncode == 0 and flag.returncode == 0, flag.stderr.decode()
    assert flag.stdout == listed.stdout and b"xtts-v2" in flag.stdout


# --- progress on a terminal -------------------------------------------------------------

SENTENCES = "First sentence here. Second one follows. A third to count. And a fourth."


def test_piper_shows_a_sentence_bar_on_a_terminal(isolated_home, tmp_path):
    code, err = run_cli_on_tty(["piper-infer", "en_US-joe-medium", SENTENCES, "-o", tmp_path / "a.wav"])
    assert code == 0, err
    assert b"piper" in err and b"sentence" in err and b"/4" in err, err  # counted per sentence, out of 4
    assert b"wrote" in err


@pytest.mark.parametrize("how", ["quiet", "pipe"])
def test_no_bar_with_quiet_or_off_a_terminal(isolated_home, tmp_path, how):
    args = ["piper-infer", "en_US-joe-medium", SENTENCES, "-o", tmp_path / "a.wav"]
    code, err = run_cli_on_tty(["-q", *args] if how == "quiet" else args, tty=how != "pipe")
    assert code == 0, err
    assert b"\r" not in err, err  # never a bar
    if how == "quiet":
        assert err.strip() == b"", err
    else:  # off a terminal: at most one-line progress records (every 10 s, #34), then the status line
        lines = err.decode().strip().splitlines()
        assert all(line.startswith("piper: ") and "sentence" in line for line in lines[:-1]), err


def test_third_party_warnings_follow_our_verbosity():
    """Library warnings and log lines: hidden with -q, shown once otherwise (never doubled)."""
    code = ("import logging, sys, warnings\nfrom demod_voice import cli, progress\n"
            "cli._setup_logging(int(sys.argv[1]), sys.argv[2] == 'q')\n"
            "hub = logging.getLogger('huggingface_hub')\nhub.addHandler(logging.StreamHandler())\n"
            "progress.adopt_logger('huggingface_hub')\n"
            "warnings.warn('pkg_resources is deprecated as an API', UserWarning)\n"
            "hub.warning('Retrying in 1s [Retry 1/5].')\nhub.info('fetching metadata')\n")

    def run(verbose: int, quiet: bool) -> str:
        proc = subprocess.run([sys.executable, "-c", code, str(verbose), "q" if quiet else "-"], capture_output=True,
                              env=cli_env(), timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stderr.decode()

    assert run(0, True) == ""
    normal = run(0, False)
    assert normal.count("Retrying in 1s") == 1 and "pkg_resources" in normal and "fetching metadata" not in normal
    verbose = run(1, False)
    assert verbose.count("Retrying in 1s") == 1 and "fetching metadata" in verbose and "pkg_resources" in verbose
