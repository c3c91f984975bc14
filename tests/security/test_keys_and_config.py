"""Item 6 of issue #18 (secrets): API keys stored only as salted hashes, `config show` redacts them,
`config hash-key` makes them, plain keys come from a key file or DEMOD_VOICE_API_KEYS."""

from __future__ import annotations

import json

import pytest

from demod_voice import config as config_mod
from demod_voice.errors import ConfigError
from demod_voice.server import security
from tests.helpers import run_cli


def test_hash_key_command_makes_a_usable_hash(isolated_home):
    proc = run_cli("config", "hash-key", input="a-perfectly-long-api-key\n")
    assert proc.returncode == 0, proc.stderr
    hashed = proc.stdout.decode().strip()
    assert hashed.startswith("pbkdf2_sha256$") and "a-perfectly-long-api-key" not in hashed
    assert security.KeyHash.parse(hashed, "test").matches("a-perfectly-long-api-key")
    assert not security.KeyHash.parse(hashed, "test").matches("a-perfectly-long-api-kez")
    fresh = run_cli("config", "hash-key", "--new", "--user", "alice")
    key = fresh.stderr.decode().strip().rsplit(" ", 1)[1]
    user, value = fresh.stdout.decode().strip().split(": ", 1)
    assert user == "alice" and security.KeyHash.parse(value, "test").matches(key)
    short = run_cli("config", "hash-key", input="short\n")
    assert short.returncode == 2 and "16" in short.stderr.decode()


def test_config_show_redacts_every_secret(isolated_home, tmp_path):
    hashed = security.hash_key("alice-key-0123456789abcdef")
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"server:\n  api_keys:\n    alice: '{hashed}'\n")
    for args in (("config", "show"), ("config", "show", "--json")):
        proc = run_cli(*args, "--config", cfg_file)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout.decode()
        assert hashed not in out and hashed.split("$")[2] not in out
        assert "<redacted>" in out and "alice" in out
    shown = json.loads(run_cli("config", "show", "--json", "--config", cfg_file).stdout)
    assert shown["server.api_keys"]["value"] == {"alice": "<redacted>"}


def test_plain_keys_in_the_config_are_refused(isolated_home, tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("auth:\n  keys:\n    plain-text-key-0123456789: alice\n")
    proc = run_cli("config", "validate", old)
    assert proc.returncode == 2 and "hash" in proc.stderr.decode()
    plain = tmp_path / "plain.yaml"
    plain.write_text("server:\n  api_keys:\n    alice: plain-text-key-0123456789\n")
    cfg = config_mod.load(plain, environ={}, user_file=tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="not an API key hash"):
        security.load_keys(cfg, environ={})


def test_keys_from_a_key_file_and_the_environment(tmp_path):
    key_file = tmp_path / "keys.yaml"
    key_file.write_text("bob-key-0123456789abcdef: bob\n")
    key_file.chmod(0o600)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"auth:\n  required: true\nserver:\n  api_keys_file: {key_file}\n  admin_users: [root]\n")
    env = {"DEMOD_VOICE_API_KEYS": "carol:carol-key-0123456789abcdef, root:root-key-0123456789abcdef"}
    cfg = config_mod.load(cfg_file, environ=env, user_file=tmp_path / "none.yaml")  # the variable is no config key
    ring = security.load_keys(cfg, environ=env)
    assert ring.user_for("bob-key-0123456789abcdef") == "bob"
    assert ring.user_for("carol-key-0123456789abcdef") == "carol"
    assert ring.user_for("carol-key-0123456789abcdeX") is None
    assert ring.user_for(None) is None
    assert ring.is_admin("root") and not ring.is_admin("carol")
    assert all(isinstance(h, security.KeyHash) for _, h in ring.entries)  # nothing plain is kept
    with pytest.raises(ConfigError, match="USER:KEY"):
        security.load_keys(cfg, environ={"DEMOD_VOICE_API_KEYS": "no-user-here-0123456789"})
