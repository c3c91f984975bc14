"""API keys -> users.

Keys come from ``auth.keys`` (a mapping key -> user) and ``auth.keys_file``
(a YAML file of the same mapping). A request names its key as
``Authorization: Bearer KEY`` (what the OpenAI SDK sends) or ``X-API-Key``.
With ``auth.required`` a missing or unknown key is refused with 401. Without
it, requests with no key -- or a key that is not configured, such as the
placeholder an OpenAI client insists on -- act as the local user; a known key
still selects its user.
"""

from __future__ import annotations

import hmac

from demod_voice.config import load_yaml_file
from demod_voice.errors import ConfigError, InputError
from demod_voice.paths import validate_name
from demod_voice.voices import DEFAULT_USER


def load_keys(cfg) -> dict[str, str]:
    keys: dict[str, str] = {}
    sources = [("auth.keys", cfg.get("auth.keys") or {})]
    if cfg.get("auth.keys_file"):
        sources.append((cfg.get("auth.keys_file"), load_yaml_file(cfg.get("auth.keys_file"), "API keys file")))
    for origin, mapping in sources:
        for key, user in mapping.items():
            if not isinstance(key, str) or len(key) < 8:
                raise ConfigError(f"API key {str(key)[:4]!r}... in {origin} is too short", hint="use at least 8 characters")
            try:
                validate_name(str(user), "user name")
            except InputError as exc:
                raise ConfigError(f"{origin}: {exc.message}", hint=exc.hint) from None
            keys[key] = str(user)
    return keys


def key_from_headers(headers) -> str | None:
    value = headers.get("authorization", "")
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return headers.get("x-api-key") or None


def user_for_key(keys: dict[str, str], key: str | None, required: bool) -> str | None:
    """The user a key belongs to; ``None`` means refuse (401)."""
    if key:
        for known, user in keys.items():  # constant-time comparison against every key
            if hmac.compare_digest(known.encode(), key.encode()):
                return user
    return None if required else DEFAULT_USER
