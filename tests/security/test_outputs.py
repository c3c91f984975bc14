"""Item 1 of issue #18: special output paths, in every writer (CLI, batch, config, cache/dataset helpers).

A character device, FIFO or ``-`` is streamed into (never replaced), a symlink is followed and its target
replaced atomically, a folder is refused. Real files, real FIFOs, a real Piper voice, real subprocesses.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.xtts.test_models import hub  # noqa: F401  (the loopback model hub fixture)


def char_device_identity(path: str) -> tuple[int, int, int]:
    st = os.lstat(path)
    assert stat.S_ISCHR(st.st_mode), f"{path} is no longer a character device"
    return st.st_ino, st.st_rdev, st.st_mode


class FifoReader:
    """Reads everything written to a FIFO in a thread (a writer blocks until a reader opens it)."""

    def __init__(self, path: Path):
        self.data = b""
        self.thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self.thread.start()

    def _read(self, path: Path) -> None:
        with open(path, "rb") as fh:
            self.data = fh.read()

    def result(self) -> bytes:
        self.thread.join(60)
        return self.data


def test_piper_to_dev_null_leaves_it_a_char_device(isolated_home, joe_voice, tmp_path):
    before = char_device_identity("/dev/null")
    proc = run_cli("piper-infer", joe_voice, "Nothing to see.", "-o", "/dev/null", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert char_device_identity("/dev/null") == before
    assert not list(Path("/dev").glob(".null.*.part"))


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_private_char_device_is_streamed_into_not_replaced(isolated_home, joe_voice, tmp_path):
    device = tmp_path / "mynull"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the null device's numbers, in our own folder
    before = char_device_identity(str(device))
    proc = run_cli("piper-infer", joe_voice, "Into a device.", "-o", device, "--format", "wav", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert char_device_identity(str(device)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "mynull"]  # no temp file left beside it


def test_fifo_receives_the_audio_and_stays_a_fifo(isolated_home, joe_voice, tmp_path):
    fifo = tmp_path / "audio.wav"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    proc = run_cli("piper-infer", joe_voice, "Through a pipe.", "-o", fifo, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = reader.result()
    assert data[:4] == b"RIFF" and len(data) > 10_000
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_symlink_is_followed_and_its_target_replaced(isolated_home, joe_voice, tmp_path):
    real_dir = tmp_path / "elsewhere"
    real_dir.mkdir()
    target = real_dir / "take.wav"
    target.write_bytes(b"old")
    link = tmp_path / "out.wav"
    link.symlink_to(target)
    proc = run_cli("piper-infer", joe_voice, "Follow the link.", "-o", link, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes()[:4] == b"RIFF"
    assert sorted(p.name for p in real_dir.iterdir()) == ["take.wav"]


def test_folder_output_is_refused(isolated_home, joe_voice, tmp_path):
    folder = tmp_path / "out.wav"
    folder.mkdir()
    proc = run_cli("piper-infer", joe_voice, "Hello.", "-o", folder, cwd=tmp_path)
    assert proc.returncode == 2
    assert "folder" in proc.stderr.decode() and not proc.stderr.decode().count("Traceback")
    assert folder.is_dir() and not list(folder.iterdir())


def test_batch_writes_into_devices_fifos_and_symlinks(isolated_home, joe_voice, tmp_path):
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link.wav").symlink_to(real / "linked.wav")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(f'{{"engine": "piper", "model": "{joe_voice}", "text": "Line {i}.", "output": "{out}"}}\n'
                            for i, out in enumerate(["/dev/null", str(fifo), "link.wav"])))
    before = char_device_identity("/dev/null")
    reader = FifoReader(fifo)
    proc = run_cli("batch", jobs, "--workers", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert char_device_identity("/dev/null") == before
    assert reader.result()[:4] == b"RIFF" and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert (tmp_path / "link.wav").is_symlink() and (real / "linked.wav").read_bytes()[:4] == b"RIFF"


def test_config_init_and_every_atomic_writer_share_the_rules(tmp_path):
    from demod_voice import paths
    from demod_voice.errors import InputError

    before = char_device_identity("/dev/null")
    paths.atomic_write_bytes("/dev/null", b"config")  # what config init, caches and dataset writers call
    with paths.atomic_output("/dev/null") as where:
        Path(where).write_bytes(b"model")  # writers that need a path (torch.save, soundfile)
    assert char_device_identity("/dev/null") == before
    with pytest.raises(InputError, match="folder"):
        paths.atomic_write_bytes(tmp_path, b"x")
    with pytest.raises(InputError, match="device or FIFO"):
        paths.check_output("/dev/null", "model file", streams=False)
    kept = tmp_path / "secret.yaml"
    kept.write_text("a: 1\n")
    kept.chmod(0o600)
    paths.atomic_write_bytes(kept, b"a: 2\n")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_text() == "a: 2\n"


def test_config_init_to_dev_null(isolated_home, tmp_path):
    before = char_device_identity("/dev/null")
    proc = run_cli("config", "init", "--path", "/dev/null", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert char_device_identity("/dev/null") == before


# --- models pull: the same rules for downloaded model files ------------------------------

def test_models_pull_follows_symlinks_and_refuses_fifos(cli, hub, tmp_path):  # noqa: F811
    hub.write_registry()
    hub.folder.mkdir(parents=True)
    store = tmp_path / "shared-store"
    store.mkdir()
    (hub.folder / "model.bin").symlink_to(store / "model.bin")
    os.mkfifo(hub.folder / "config.json")
    refused = cli("models", "pull", "tiny", env=hub.env)
    assert refused.returncode == 2 and "config.json" in refused.stderr.decode()
    assert stat.S_ISFIFO(os.lstat(hub.folder / "config.json").st_mode)
    (hub.folder / "config.json").unlink()
    proc = cli("models", "pull", "tiny", env=hub.env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (hub.folder / "model.bin").is_symlink()
    assert (store / "model.bin").read_bytes() == hub.files["model.bin"]
    assert cli("models", "verify", "tiny", env=hub.env).returncode == 0
