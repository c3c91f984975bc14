"""``models pull|verify|list|path`` against a real loopback HTTP server speaking the hub's protocol."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.xtts.hub_server import HubServer

REPO, REVISION = "tester/tiny-model", "0123456789abcdef0123456789abcdef01234567"


def _files() -> dict[str, bytes]:
    weights = os.urandom(3 * 1024 * 1024 + 17)  # big enough that a cut connection leaves a real partial
    return {"config.json": b'{"hello": "world"}\n', "model.bin": weights}


@pytest.fixture
def hub(isolated_home, tmp_path):
    files = _files()
    registry = tmp_path / "registry.yaml"

    def write_registry(gate: bool = False, corrupt: str | None = None):
        spec = {"kind": "test", "repo": REPO, "revision": REVISION, "license": "Test Licence 1.0",
                "license_url": "https://example.invalid/licence", "license_gate": gate, "files": []}
        for path, data in server.files.items():
            digest = hashlib.sha256(data).hexdigest()
            if path == corrupt:
                digest = hashlib.sha256(b"something else").hexdigest()
            spec["files"].append({"path": path, "size": len(data), "sha256": digest})
        registry.write_text(json.dumps({"tiny": spec}))

    with HubServer(REPO, REVISION, files) as server:
        env = {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
               "DEMOD_VOICE_MODELS__REGISTRY": str(registry)}
        server.write_registry = write_registry
        server.env = env
        server.folder = isolated_home / "data" / "demod-voice" / "models" / "tiny"
        yield server


def test_pull_downloads_and_verifies(cli, hub):
    hub.write_registry()
    proc = cli("models", "pull", "tiny", env=hub.env)
    assert proc.returncode == 0, proc.stderr.decode()
    for name, data in hub.files.items():
        assert (hub.folder / name).read_bytes() == data
    assert cli("models", "verify", "tiny", env=hub.env).returncode == 0
    listed = cli("models", "list", "--json", env=hub.env)
    entry = next(e for e in json.loads(listed.stdout) if e["name"] == "tiny")
    assert entry["status"] == "installed" and entry["revision"] == REVISION
    assert cli("models", "path", "tiny", env=hub.env).stdout.decode().strip() == str(hub.folder)
    # A second pull finds everything verified and downloads nothing.
    count = len(hub.requests)
    assert cli("models", "pull", "tiny", env=hub.env).returncode == 0
    assert len(hub.requests) == count


def test_sha256_mismatch_is_an_error_and_the_file_is_not_kept(cli, hub):
    hub.write_registry(corrupt="model.bin")
    proc = cli("models", "pull", "tiny", env=hub.env)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert "model.bin" in err and "sha256 mismatch" in err and "deleted" in err
    assert not (hub.folder / "model.bin").exists()
    assert (hub.folder / "config.json").is_file()  # the good file before it stays
    # verify reports the missing/bad file with exit 1
    proc = cli("models", "verify", "tiny", env=hub.env)
    assert proc.returncode == 1 and "model.bin (missing)" in proc.stderr.decode()


def test_corrupted_file_on_disk_fails_verify(cli, hub):
    hub.write_registry()
    assert cli("models", "pull", "tiny", env=hub.env).returncode == 0
    with open(hub.folder / "model.bin", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    proc = cli("models", "verify", "tiny", env=hub.env)
    assert proc.returncode == 1 and "sha256 mismatch" in proc.stdout.decode() + proc.stderr.decode()
    # pull replaces it
    assert cli("models", "pull", "tiny", env=hub.env).returncode == 0
    assert (hub.folder / "model.bin").read_bytes() == hub.files["model.bin"]


def test_interrupted_download_resumes_with_a_range_request(cli, hub):
    # huggingface_hub writes in 10 MiB chunks: the connection drops after 12 MiB of 24 MiB.
    hub.files["model.bin"] = os.urandom(24 * 1024 * 1024)
    hub.write_registry()
    hub.drop_once.add("model.bin")
    proc = cli("models", "pull", "tiny", env=hub.env)
    assert proc.returncode == 0, proc.stderr.decode()
    ranges = hub.gets("model.bin")
    assert ranges[0] is None and len(ranges) == 2
    start = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < start < len(hub.files["model.bin"])  # continued where it stopped, not from zero
    assert (hub.folder / "model.bin").read_bytes() == hub.files["model.bin"]


def test_licence_gate_is_asked_once(cli, hub, isolated_home):
    hub.write_registry(gate=True)
    proc = cli("models", "pull", "tiny", env=hub.env)
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "Test Licence 1.0" in err and "--accept-license" in err
    assert not [r for r in hub.requests if r[0] == "GET"] and not hub.folder.exists()
    assert cli("models", "pull", "tiny", "--accept-license", env=hub.env).returncode == 0
    accepted = json.loads((isolated_home / "data" / "demod-voice" / "models" / "accepted-licenses.json").read_text())
    assert accepted["tiny"]["license"] == "Test Licence 1.0"
    (hub.folder / "config.json").unlink()
    proc = cli("models", "pull", "tiny", env=hub.env)  # remembered: no flag needed any more
    assert proc.returncode == 0, proc.stderr.decode()
    assert (hub.folder / "config.json").is_file()


def test_builtin_entries_are_pinned(isolated_home):
    from demod_voice import config, models

    cfg = config.load()
    xtts = models.get("xtts-v2", cfg)
    assert xtts.repo == "coqui/XTTS-v2" and len(xtts.revision) == 40 and xtts.license_gate
    assert {f.path for f in xtts.files if f.required} == {"config.json", "model.pth", "vocab.json"}
    assert all(f.sha256 and len(f.sha256) == 64 and f.size for f in xtts.files)
    aux = models.get("rvc-aux", cfg)
    assert {f.path for f in aux.files} == {"hubert_base.pt", "rmvpe.pt"}
    assert models.local_dir(aux, cfg) == cfg.data_dir / "models" / "rvc-aux"
    with pytest.raises(Exception, match="unknown model 'xtts-v3'"):
        models.get("xtts-v3", cfg)


@pytest.mark.parametrize("quiet", [False, True])
def test_pull_shows_a_file_bar_on_a_terminal_only(hub, quiet):
    """A bar per file on a terminal (issue 25 item 6); none with -q, and none in a pipe (the other tests)."""
    from tests.helpers import run_cli_on_tty

    hub.write_registry()
    code, err = run_cli_on_tty([*(["-q"] if quiet else []), "models", "pull", "tiny"], env=hub.env)
    assert code == 0, err
    for name, data in hub.files.items():
        assert (hub.folder / name).read_bytes() == data
    if quiet:
        assert err.strip() == b"", err
    else:
        assert b"pull tiny" in err and b"2/2" in err and b"file" in err, err


def test_model_sizes_use_binary_units():
    """1 GiB is labelled GiB (it was "GB"); an entry with sizes never shows 0 B."""
    from demod_voice import models

    assert models.human_size(1024 ** 3) == "1.0 GiB" and models.human_size(1536) == "1.5 KiB"
    assert models.human_size(None) == "size unknown"
    assert models.size_label(models.BUILTIN["whisper-small.en"]) == "unknown"  # no pinned sizes: not "0 B"
    assert models.size_label(models.BUILTIN["rvc-aux"]) == "353.5 MiB"
