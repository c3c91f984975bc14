"""#35 item 7, the smaller holes: a group/world-readable key file is a startup error (with an explicit
override), and a config that names one quality tier keeps the others (mappings merge deeply, as documented)."""

from __future__ import annotations

import pytest

from demod_voice import config as config_mod
from demod_voice.errors import ConfigError
from demod_voice.server import security
from tests.helpers import run_cli


def _key_file_config(tmp_path, mode: int):
    key_file = tmp_path / "keys.yaml"
    key_file.write_text("bob-key-0123456789abcdef: bob\n")
    key_file.chmod(mode)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"auth:\n  required: true\nserver:\n  api_keys_file: {key_file}\n")
    return cfg_file


def test_a_readable_key_file_is_refused_unless_allowed(tmp_path):
    cfg_file = _key_file_config(tmp_path, 0o644)
    cfg = config_mod.load(cfg_file, environ={}, user_file=tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="readable by other users .mode 644"):
        security.load_keys(cfg, environ={})
    cfg.set("server.allow_insecure_keys_file", True, "flag")
    assert security.load_keys(cfg, environ={}).user_for("bob-key-0123456789abcdef") == "bob"
    private = config_mod.load(_key_file_config(tmp_path, 0o600), environ={}, user_file=tmp_path / "none.yaml")
    assert security.load_keys(private, environ={}).user_for("bob-key-0123456789abcdef") == "bob"


def test_serve_refuses_a_readable_key_file_at_startup(tmp_path, isolated_home):
    cfg_file = _key_file_config(tmp_path, 0o640)
    proc = run_cli("serve", "--config", cfg_file, "--port", "9", timeout=120)
    assert proc.returncode == 2, proc.stderr.decode()
    assert b"--allow-insecure-keys-file" in proc.stderr and b"Traceback" not in proc.stderr


def test_one_tier_in_the_config_keeps_the_default_tiers(tmp_path):
    cfg_file = tmp_path / "tiers.yaml"
    cfg_file.write_text("router:\n  tiers:\n    medium: [piper]\n    studio: [xtts, piper]\n")
    cfg = config_mod.load(cfg_file, environ={}, user_file=tmp_path / "none.yaml")
    tiers = cfg.get("router.tiers")
    assert tiers["fast"] == ["piper"] and tiers["high"] == ["xtts", "piper"]  # the defaults stay
    assert tiers["studio"] == ["xtts", "piper"] and tiers["medium"] == ["piper"]


def test_undecodable_audio_errors_name_no_object_address():
    import io

    from demod_voice import audio
    from demod_voice.errors import InputError

    for source in (io.BytesIO(b"garbage" * 100), b"garbage" * 100):
        with pytest.raises(InputError) as raised:
            audio.read(source, what="uploaded audio")
        assert "object at 0x" not in str(raised.value)
        with pytest.raises(InputError) as raised:
            audio.decode_upload(b"garbage" * 100, "uploaded audio", 10, "stt.max_audio_s")
        assert "object at 0x" not in str(raised.value)


def test_options_and_405_name_every_method_of_a_path(isolated_home):
    from starlette.testclient import TestClient

    from demod_voice.server.app import create_app

    app = create_app(config_mod.load(environ={}))
    with TestClient(app, base_url="http://localhost") as http:
        options = http.options("/api/voices/narrator")
        assert options.status_code == 204 and options.headers["allow"] == "DELETE, GET, OPTIONS"
        wrong = http.put("/api/voices/narrator")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "DELETE, GET, OPTIONS"
        assert http.get("/v1/audio/speech").headers["allow"] == "OPTIONS, POST"
