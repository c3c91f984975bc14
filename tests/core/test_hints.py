"""Hints and settings that must agree with what works (issue 25 item 8), through the real CLI."""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO

EXTRAS = set(re.findall(r"^([a-z][a-z-]*) = \[", (REPO / "pyproject.toml").read_text().split(
    "[project.optional-dependencies]", 1)[1].split("\n[", 1)[0], re.M))


def test_every_extra_a_hint_names_exists():
    """health and missing-extra errors name only real extras, with a command that works (no package index)."""
    from demod_voice import health
    from demod_voice.errors import install_hint, missing_extra

    for name in health.CAPABILITIES:
        extra = health.EXTRA_FOR.get(name, name)
        assert extra in EXTRAS, f"health capability {name} points at the missing extra {extra}"
    hint = missing_extra("fastapi", "server").hint
    assert hint == install_hint("server")
    assert "make install EXTRAS=server" in hint and "pip install '.[server]'" in hint
    assert "demod-voice[" not in hint
    # And no source file suggests installing from a package index the project is not on.
    for path in (REPO / "demod_voice").rglob("*.py"):
        assert "pip install 'demod-voice[" not in path.read_text(encoding="utf-8"), path


def test_health_names_the_stt_extra(cli):
    proc = cli("health", "--json")
    assert "demod-voice[transcribe]" not in proc.stdout.decode() + proc.stderr.decode()


def test_voices_list_refuses_an_unknown_engine(cli):
    proc = cli("voices", "list", "--engine", "foo")
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "invalid choice: 'foo'" in err and "piper" in err, err
    assert cli("voices", "list", "--engine", "piper").returncode == 0


def test_output_format_aac_in_config_works_like_the_flag(cli, tmp_path):
    """`output.format: aac` is accepted (as `--format aac` always was) and used when the name has no suffix."""
    config = tmp_path / "aac.yaml"
    config.write_text("output:\n  format: aac\n")
    out = tmp_path / "speech"
    proc = cli("--config", config, "piper-infer", "en_US-joe-medium", "Advanced audio coding.", "-o", out)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "aac" in proc.stderr.decode()
    av = pytest.importorskip("av")
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
