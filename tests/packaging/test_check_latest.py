"""`make check-latest`'s own logic: the version diff and the bisection that names the breaking release."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("check_latest", ROOT / ".ci" / "check_latest.py")
check_latest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_latest)


def test_changed_lists_only_moved_packages(tmp_path):
    old = tmp_path / "old.lock"
    new = tmp_path / "new.lock"
    old.write_text('[[package]]\nname = "a"\nversion = "1"\n[[package]]\nname = "b"\nversion = "2"\n'
                   '[[package]]\nname = "demod-voice"\nsource = { editable = "." }\n')
    new.write_text('[[package]]\nname = "a"\nversion = "1"\n[[package]]\nname = "b"\nversion = "3"\n'
                   '[[package]]\nname = "c"\nversion = "1"\n')
    diff = check_latest.changed(check_latest.lock_versions(old), check_latest.lock_versions(new))
    assert diff == {"b": ("2", "3"), "c": ("-", "1")}


def test_relax_drops_only_upper_bounds(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('dependencies = ["transformers>=4.57,<5.24", "torchcodec>=0.8,<0.9; platform_machine == '
                         '\'x86_64\'", "numpy>=1.24"]\nrvc = ["transformers>=4.40"]\n')
    edited = check_latest.relax(pyproject, ["transformers", "torchcodec"])
    assert len(edited) == 2
    assert pyproject.read_text() == ('dependencies = ["transformers>=4.57", "torchcodec>=0.8; platform_machine == '
                                     '\'x86_64\'", "numpy>=1.24"]\nrvc = ["transformers>=4.40"]\n')


def test_hold_keeps_other_upgrades_back_with_uv_constraints(tmp_path):
    import tomllib

    pyproject = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text()
    check_latest.hold(pyproject, text, {"tokenizers": {"0.23.3"}, "numpy": {"2.4.6", "2.5.5"}})
    uv = tomllib.loads(pyproject.read_text())["tool"]["uv"]
    assert uv["constraint-dependencies"] == ["numpy<=2.5.5", "tokenizers==0.23.3"]
    assert uv["environments"]  # the rest of [tool.uv] is kept


def _bisect(suspects, bad):
    tried = []

    def breaks(names):
        tried.append(list(names))
        return bool(set(names) & bad)

    check_latest.bisect(suspects, breaks)
    return tried


def test_bisect_finds_the_one_breaking_release_in_log_rounds():
    suspects = [f"p{i:02d}" for i in range(32)]
    tried = _bisect(suspects, {"p21"})
    assert tried[-1] == ["p21"]
    assert len(tried) <= 2 * 5  # at most two tries per halving


def test_bisect_reports_no_single_culprit_for_a_combination():
    tried = _bisect(["a", "b", "c", "d"], set())
    assert ["a"] not in tried and tried == [["a", "b"], ["c", "d"]]


def test_wrapper_is_valid_bash():
    subprocess.run(["bash", "-n", str(ROOT / ".ci" / "check-latest.sh")], check=True)
