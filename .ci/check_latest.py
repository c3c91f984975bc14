"""`make check-latest`: would the newest allowed upstream releases still work? (Not part of CI.)

In a scratch copy of the project (never the checkout, never .venv):
1. `uv lock --upgrade`: the newest versions pyproject.toml's ranges allow; the diff against uv.lock;
2. `uv sync --locked` of every extra into a scratch venv;
3. `demod-voice health --deep` there (Piper, XTTS, RVC end to end) and the engine smoke tests;
4. for each broken engine, which upgraded release breaks it: the original versions plus a subset of
   the upgrades (the others held back with [tool.uv] constraint-dependencies), halved until one
   release alone breaks the engine's self-test (a bisection: about log2(n) installs, not n).

Prints a report (also written to SCRATCH/report.md) and exits 1 when something broke.
Environment: PYTHON, UV (set by the Makefile), CHECK_LATEST_DIR (scratch folder, default a new
one under /var/tmp), CHECK_LATEST_TESTS (pytest arguments; default the engine smoke tests),
CHECK_LATEST_BISECT=0 to skip step 4, CHECK_LATEST_RELAX="transformers ..." to drop the upper
bounds of those requirements in the scratch pyproject.toml first (is a cap still needed?).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = str(Path(os.environ.get("UV", ROOT / ".uv" / "bin" / "uv")).resolve())
PYTHON = os.environ.get("PYTHON", "python3")
EXTRAS = ["all", "dev"]
DEFAULT_TESTS = "tests/core/test_health_deep.py tests/core/test_piper_cli.py tests/xtts tests/rvc -m 'not gpu'"
#: Extra whose closure each self-tested engine runs on.
ENGINE_EXTRAS = {"piper": "piper", "xtts": "xtts", "rvc": "rvc"}


def sh(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout: float = 3600,
       capture: bool = True) -> subprocess.CompletedProcess:
    print("$ " + shlex.join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, text=True, timeout=timeout,
                          capture_output=capture)
    if check and proc.returncode != 0:
        sys.exit(f"check-latest: {cmd[0]} failed ({proc.returncode}):\n{(proc.stderr or '')[-3000:]}")
    return proc


def relax(pyproject: Path, names: list[str]) -> list[str]:
    """Drop upper bounds (``<X``, ``<=X``, ``==X``) from these requirements; return the edited requirement strings."""
    text, edited = pyproject.read_text(), []
    for name in names:
        pattern = re.compile(r'"(' + re.escape(name) + r')(\[[^\]]*\])?\s*([^";]*)((?:;[^"]*)?)"', re.I)

        def loosen(m: re.Match) -> str:
            lower = [s.strip() for s in m.group(3).split(",") if s.strip().startswith((">", "~=", "!="))]
            new = f'"{m.group(1)}{m.group(2) or ""}{",".join(lower)}{m.group(4)}"'
            if new != m.group(0):
                edited.append(f"{m.group(0)} -> {new}")
            return new

        text = pattern.sub(loosen, text)
    pyproject.write_text(text)
    return edited


def hold(pyproject: Path, text: str, held: dict[str, set[str]]) -> None:
    """Write ``text`` with [tool.uv] constraint-dependencies keeping ``held`` packages at their original versions.

    (A full `uv lock --upgrade` under constraints, rather than `--upgrade-package` on the old lock: uv
    resolves the former where the latter can fail on a Python split the old lock never needed.)
    """
    def newest(versions: set[str]) -> str:
        return max(versions, key=lambda v: [int(x) if x.isdigit() else 0 for x in re.split(r"[.+-]", v)])

    pins = [f"{name}=={next(iter(v))}" if len(v) == 1 else f"{name}<={newest(v)}" for name, v in sorted(held.items())]
    line = "constraint-dependencies = [" + ", ".join(json.dumps(p) for p in pins) + "]"
    if "[tool.uv]" in text:
        text = text.replace("[tool.uv]", "[tool.uv]\n" + line, 1)
    else:
        text += "\n[tool.uv]\n" + line + "\n"
    pyproject.write_text(text)


def lock_versions(lock: Path) -> dict[str, set[str]]:
    versions: dict[str, set[str]] = {}
    for package in tomllib.loads(lock.read_text())["package"]:
        if "version" in package:
            versions.setdefault(package["name"], set()).add(package["version"])
    return versions


def changed(old: dict[str, set[str]], new: dict[str, set[str]]) -> dict[str, tuple[str, str]]:
    out = {}
    for name in sorted(old.keys() | new.keys()):
        before, after = ", ".join(sorted(old.get(name, ()))) or "-", ", ".join(sorted(new.get(name, ()))) or "-"
        if before != after:
            out[name] = (before, after)
    return out


def closure(project: Path, extra: str, env: dict) -> set[str]:
    """Package names one extra installs (from the scratch project's current lock)."""
    out = sh([UV, "export", "--locked", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header", "--no-annotate",
              "--extra", extra], project, env).stdout
    return {line.split("==")[0].strip().lower() for line in out.splitlines() if "==" in line}


def copy_project(target: Path) -> None:
    """Tracked and untracked-but-not-ignored files only: no venv, no build outputs."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if source.is_file():
            dest = target / name.decode()
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(source.read_bytes())


def self_test(venv: Path, engine: str, env: dict) -> tuple[str, str]:
    code = (f"from demod_voice.selftest import run_engine; o = run_engine({engine!r}, []); "
            "import json; print(json.dumps([o.status, o.detail]))")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        return "broken", (proc.stderr.strip().splitlines() or ["no output"])[-1]
    status, detail = json.loads(proc.stdout.splitlines()[-1])
    return status, detail


def bisect(suspects: list[str], breaks) -> None:
    """Halve the upgraded packages until one release alone breaks the engine (log2(n) rounds, not n)."""
    if not suspects:
        return
    if len(suspects) == 1:
        breaks(suspects)
        return
    half = len(suspects) // 2
    for part in (suspects[:half], suspects[half:]):
        if breaks(part):
            if len(part) > 1:
                bisect(part, breaks)
            return


def main() -> int:
    started = time.monotonic()
    scratch = Path(os.environ.get("CHECK_LATEST_DIR") or tempfile.mkdtemp(prefix="demod-voice-latest-", dir="/var/tmp"))
    project, venv, home = scratch / "project", scratch / "venv", scratch / "home"
    project.mkdir(parents=True, exist_ok=True)
    copy_project(project)
    env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON_DOWNLOADS="never", HOME=str(home),
               XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"), UV_CACHE_DIR=os.environ.get("UV_CACHE_DIR")
               or sh([UV, "cache", "dir"], ROOT).stdout.strip())
    env = {k: v for k, v in env.items() if not k.startswith("DEMOD_VOICE_")}
    original = lock_versions(project / "uv.lock")
    (scratch / "uv.lock.orig").write_text((project / "uv.lock").read_text())

    relaxed = relax(project / "pyproject.toml", os.environ.get("CHECK_LATEST_RELAX", "").split())
    relaxed_text = (project / "pyproject.toml").read_text()
    for line in relaxed:
        print(f"   relaxed {line}", flush=True)
    sh([UV, "lock", "--upgrade"], project, env)
    upgrades = changed(original, lock_versions(project / "uv.lock"))
    sync = [UV, "sync", "--locked", "--python", PYTHON, *[f"--extra={e}" for e in EXTRAS]]
    sh(sync, project, env, timeout=7200)

    health = sh([str(venv / "bin" / "demod-voice"), "health", "--deep", "--json"], project, env, check=False)
    report = json.loads(health.stdout) if health.stdout.strip().startswith("{") else {"checks": []}
    runs = {c["name"].removesuffix("-run"): c for c in report["checks"] if c["name"].endswith("-run")}
    tests = os.environ.get("CHECK_LATEST_TESTS", DEFAULT_TESTS)
    pytest = sh([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "--no-header",
                 *shlex.split(tests)], project, env, check=False, timeout=7200)
    failed_tests = [line for line in pytest.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]

    broken = [e for e, c in runs.items() if c["data"].get("status") == "broken"]
    culprits: dict[str, list[str]] = {}
    if broken and upgrades and os.environ.get("CHECK_LATEST_BISECT", "1") != "0":
        for engine in broken:
            suspects = sorted(closure(project, ENGINE_EXTRAS[engine], env) & set(upgrades))

            def breaks(names: list[str], engine=engine) -> bool:
                """The original versions plus only these upgrades: is the engine broken?"""
                held = {n: original[n] for n in upgrades if n not in names and n in original}
                hold(project / "pyproject.toml", relaxed_text, held)
                sh([UV, "lock", "--upgrade"], project, env)
                sh(sync, project, env, timeout=7200)
                status, detail = self_test(venv, engine, env)
                print(f"   {engine} with only {', '.join(names)} upgraded: {status}", flush=True)
                if status == "broken" and len(names) == 1:
                    culprits.setdefault(engine, []).append(
                        f"{names[0]} {upgrades[names[0]][0]} -> {upgrades[names[0]][1]}: {detail}")
                return status == "broken"

            bisect(suspects, breaks)
            culprits.setdefault(engine, [])

    lines = ["# check-latest", ""]
    if relaxed:
        lines += ["Upper bounds dropped in the scratch pyproject.toml (CHECK_LATEST_RELAX):", ""]
        lines += [f"- {line}" for line in relaxed] + [""]
    lines += [f"{len(upgrades)} locked packages would change with `uv lock --upgrade`:", ""]
    lines += [f"- {name}: {before} -> {after}" for name, (before, after) in upgrades.items()] or ["- none"]
    lines += ["", "## health --deep on the newest versions", ""]
    lines += [f"- {name}: {c['detail']}" if c["ok"] else f"- {name}: **{c['detail']}**" for name, c in runs.items()]
    if not runs:
        lines.append(f"- health did not report (exit {health.returncode}): {health.stderr.strip()[-500:]}")
    summary = (pytest.stdout.strip().splitlines() or ["no output"])[-1]
    lines += ["", f"## engine smoke tests ({tests}): {summary}", ""] + [f"- {t}" for t in failed_tests]
    if culprits:
        lines += ["", "## which upgrade breaks what (bisected: original versions + upgraded subsets)", ""]
        for engine, found in culprits.items():
            lines += [f"- {engine}: " + ("; ".join(found) if found else
                                         "no single upgrade breaks it alone (a combination does)")]
    bad = bool(broken or failed_tests or pytest.returncode not in (0, 5))
    lines += ["", f"verdict: {'something broke' if bad else 'the newest allowed versions work'} "
                  f"({time.monotonic() - started:.0f} s; scratch {scratch})"]
    text = "\n".join(lines) + "\n"
    (scratch / "report.md").write_text(text)
    print("\n" + text)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
