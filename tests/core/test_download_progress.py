"""``models pull`` and ``voices download`` into a log write a progress record at least every 10 s, and
nothing with ``-q`` (#34 item 5). A real loopback hub (tests/xtts/hub_server.py) sends the file slowly."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from demod_voice import piper_voices
from tests.core.test_voices_download import FOLDER, NAME, voice_entry
from tests.xtts.hub_server import HubServer

SLOW_S = 13.0  # longer than one record interval (progress.RECORD_S = 10 s)


@pytest.mark.slow
def test_models_pull_writes_records_off_a_terminal(cli, isolated_home, tmp_path):
    repo, revision = "tester/slow-model", "0123456789abcdef0123456789abcdef01234567"
    files = {"model.bin": bytes(range(256)) * 4096}  # 1 MiB
    registry = tmp_path / "registry.yaml"
    registry.write_text(json.dumps({"slow": {
        "kind": "test", "repo": repo, "revision": revision, "license": "Test", "license_url": "https://example.invalid",
        "files": [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in files.items()]}}))
    with HubServer(repo, revision, files) as hub:
        hub.slow["model.bin"] = SLOW_S
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
               "DEMOD_VOICE_MODELS__REGISTRY": str(registry)}
        proc = cli("models", "pull", "slow", env=env)
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        assert "\r" not in err  # no bar drawn into the log
        records = [line for line in err.splitlines() if line.startswith("pull slow: ")]
        assert records, err
        assert re.fullmatch(r"pull slow: 0/1 file \(0 %\), 1\d s \[model\.bin, 1\.0 MiB\]", records[0]), records
        quiet = cli("-q", "models", "pull", "slow", "--force", env=env)
        assert quiet.returncode == 0 and quiet.stderr.decode() == "", quiet.stderr.decode()


@pytest.mark.slow
def test_voices_download_writes_byte_records_off_a_terminal(cli, isolated_home, joe_voice):
    files = {f"{FOLDER}/{NAME}.onnx": joe_voice.read_bytes(),
             f"{FOLDER}/{NAME}.onnx.json": Path(f"{joe_voice}.json").read_bytes()}
    served = {**files, "voices.json": json.dumps({NAME: voice_entry(NAME, "en_US", files)}).encode()}
    with HubServer(piper_voices.REPO, piper_voices.REVISION, served) as hub:
        hub.slow[f"{FOLDER}/{NAME}.onnx"] = SLOW_S
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1"}
        proc = cli("voices", "download", NAME, env=env)
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        assert "\r" not in err
        records = [line for line in err.splitlines() if line.startswith(f"download Piper voice {NAME}: ")]
        assert records, err
        assert re.fullmatch(rf"download Piper voice {NAME}: [0-9.]+ MiB/[0-9.]+ MiB \(\d+ %\), 1\d s, "
                            rf"about \d+ s left \[{NAME}\.onnx\]", records[0]), records
        quiet = cli("-q", "voices", "download", NAME, "--force", env=env)
        assert quiet.returncode == 0, quiet.stderr.decode()
        assert "download Piper voice" not in quiet.stderr.decode(), quiet.stderr.decode()
