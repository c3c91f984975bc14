"""Issue 24 item 5: hostile YAML config files give a config error naming the file and line, exit 2.

Before: alias expansion (billion laughs) ran 34 s into a MemoryError, 5 000-deep nesting raised
RecursionError, a 5 000-digit integer ValueError ("unexpected ... please report it"), and duplicate
keys were accepted silently: the last ``auth:`` block won, which can turn auth off.
"""

from __future__ import annotations

import pytest

from demod_voice.config import load_yaml_file
from demod_voice.errors import ConfigError
from tests.helpers import run_cli

LAUGHS = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)) + "server:\n  models: *i\n"

FILES = {
    "laughs.yaml": (LAUGHS, "aliases", 5),
    "deep.yaml": ("server:\n  models: " + "[" * 5000 + "]" * 5000 + "\n", "nesting deeper than 64", 2),
    "bigint.yaml": ("server:\n  port: " + "9" * 5000 + "\n", "5000 digits", 2),
    "dupes.yaml": ("auth:\n  required: true\nserver:\n  port: 5002\nauth:\n  required: false\n", "duplicate key 'auth'", 5),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_hostile_yaml_is_a_config_error_with_file_and_line(tmp_path, name):
    text, problem, line = FILES[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_yaml_file(path)
    assert str(path) in err.value.message and f"line {line}" in err.value.message, err.value
    assert problem in (err.value.hint or ""), err.value.hint


@pytest.mark.parametrize("name", sorted(FILES))
def test_hostile_yaml_exits_2_from_the_cli(isolated_home, tmp_path, name):
    text, problem, _ = FILES[name]
    path = tmp_path / name
    path.write_text(text)
    proc = run_cli("config", "show", "--config", path, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err.count("error: ") == 1 and "Traceback" not in err and "please report" not in err, err
    assert name in err and problem in err, err


def test_ordinary_yaml_still_loads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("base: &base {cpu_workers: 2}\nserver:\n  <<: *base\n  port: 5003\n  models: {a: fast}\n")
    assert load_yaml_file(path)["server"] == {"cpu_workers": 2, "port": 5003, "models": {"a": "fast"}}
