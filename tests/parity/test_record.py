"""The parity record (``demod_voice/parity.py``, printed by ``health --deep``, quoted in docs/engines.md) names
exactly the parity tests that exist."""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _tests_by_engine() -> dict[str, tuple[str, ...]]:
    found: dict[str, set[str]] = {}
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        engine = path.stem.removeprefix("test_").split("_")[0]
        names = {node.name.removeprefix("test_") for node in ast.parse(path.read_text()).body
                 if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
        found.setdefault(engine, set()).update(names)
    return {engine: tuple(sorted(names)) for engine, names in found.items()}


def test_record_names_the_parity_tests():
    from demod_voice import parity

    recorded = {engine: tuple(sorted(tests)) for engine, (_, tests) in parity.RECORD.items()}
    assert recorded == _tests_by_engine(), "update demod_voice/parity.py RECORD to the tests in tests/parity"


def test_engines_page_carries_the_record():
    from demod_voice import parity

    assert parity.line() in (ROOT / "docs" / "engines.md").read_text(), \
        "paste demod_voice.parity.line() into docs/engines.md (section 'Parity with reference implementations')"


def test_health_deep_reports_it_without_torch():
    import subprocess
    import sys

    from tests.helpers import cli_env

    code = ("import sys\nfrom demod_voice import health, parity\ncheck = health.check_parity()\n"
            "assert check.ok and check.detail == parity.line(), check\nassert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=cli_env(), timeout=120)
