"""API keys, stored only as salted hashes, and the users they stand for.

The config holds ``server.api_keys``: user name -> one salted hash (or a list of them), made with
``demod-voice config hash-key``. Plain keys never need to be in the config: they may come from
``server.api_keys_file`` (a YAML mapping of plain key -> user, kept private by the operator) or
the environment variable ``DEMOD_VOICE_API_KEYS`` (``user:key,user:key``); those are hashed in
memory at start and the plain text is dropped.

A request names its key as ``Authorization: Bearer KEY`` (what the OpenAI SDK sends) or
``X-API-Key``. With ``auth.required`` a missing or unknown key is refused (401) before the body is
read. Without it, a request with no key -- or an unknown one, such as the placeholder an OpenAI
client insists on -- acts as the local user; a known key still selects its user.

Hashes are PBKDF2-HMAC-SHA256 with a random 16-byte salt. API keys are long random tokens, so a
modest iteration count is enough and keeps a check cheap; a verified key is remembered (by its
SHA-256 digest, never in plain text) so a client's later requests cost one dictionary lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from demod_voice.errors import ConfigError, InputError
from demod_voice.paths import validate_name
from demod_voice.voices import DEFAULT_USER

SCHEME = "pbkdf2_sha256"
ITERATIONS = 20_000
MIN_KEY_CHARS = 16
ENV_KEYS = "DEMOD_VOICE_API_KEYS"


def hash_key(key: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$ITERATIONS$SALT$DIGEST`` (base64) for ``key``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), salt, iterations)
    b64 = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
    return f"{SCHEME}${iterations}${b64(salt)}${b64(digest)}"


def new_key() -> str:
    """A fresh random API key (32 bytes, URL-safe)."""
    return "dv-" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyHash:
    iterations: int
    salt: bytes
    digest: bytes

    @staticmethod
    def parse(text: object, origin: str) -> KeyHash:
        try:
            scheme, iterations, salt, digest = str(text).split("$")
            if scheme != SCHEME:
                raise ValueError(scheme)
            parsed = KeyHash(int(iterations), base64.b64decode(salt, validate=True),
                             base64.b64decode(digest, validate=True))
        except ValueError:
            raise ConfigError(f"{origin} is not an API key hash ({str(text)[:12]!r}...)",
                              hint="make one with 'demod-voice config hash-key'; plain keys belong in "
                                   "server.api_keys_file or the DEMOD_VOICE_API_KEYS variable") from None
        if not 1000 <= parsed.iterations <= 10_000_000 or len(parsed.digest) != 32:
            raise ConfigError(f"{origin}: API key hash has unusable parameters", hint="make a new one with 'config hash-key'")
        return parsed

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(self.digest, hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), self.salt,
                                                                    self.iterations))


def _check_user(user: object, origin: str) -> str:
    try:
        return validate_name(str(user), "user name")
    except InputError as exc:
        raise ConfigError(f"{origin}: {exc.message}", hint=exc.hint) from None


def _check_plain(key: object, origin: str) -> str:
    if not isinstance(key, str) or len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"an API key in {origin} is too short", hint=f"use at least {MIN_KEY_CHARS} random characters "
                                                                     "('demod-voice config hash-key' makes one)")
    return key


@dataclass
class KeyRing:
    """Every configured key as (user, hash); answers "which user holds this key?"."""

    entries: list[tuple[str, KeyHash]] = field(default_factory=list)
    required: bool = False
    admins: frozenset = frozenset()
    _known: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_plain(self, key: str, user: str) -> None:
        """A plain key from a key file or the environment: hashed now, the text not kept."""
        self.entries.append((user, KeyHash.parse(hash_key(key, iterations=1000), "a plain key")))

    def user_for(self, key: str | None) -> str | None:
        """The user ``key`` belongs to; ``None`` means refuse (401). Answers are remembered by digest."""
        if key:
            memo = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
            with self._lock:
                user = self._known.get(memo)
            if user is None:
                user = next((u for u, h in self.entries if h.matches(key)), "")
                with self._lock:
                    if len(self._known) >= 4096:  # bounded: random keys must not grow it forever
                        self._known.clear()
                    self._known[memo] = user
            if user:
                return user
        return None if self.required else DEFAULT_USER

    def is_admin(self, user: str) -> bool:
        return user in self.admins


def _check_private(path: Path, allowed: bool) -> None:
    """Plain keys readable by the group or others are a startup error (``--allow-insecure-keys-file``)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # reading it names the problem
    if mode & 0o077 and not allowed:
        raise ConfigError(f"the API keys file {path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
                          "it holds plain keys", hint=f"chmod 600 {path} (or serve --allow-insecure-keys-file)")


def load_keys(cfg, environ=None) -> KeyRing:
    """Build the key ring from ``server.api_keys``, ``server.api_keys_file`` and ``DEMOD_VOICE_API_KEYS``."""
    from demod_voice.config import load_yaml_file

    environ = os.environ if environ is None else environ
    ring = KeyRing(required=bool(cfg.get("auth.required")),
                   admins=frozenset(cfg.get("server.admin_users") or ()))
    for user, hashes in (cfg.get("server.api_keys") or {}).items():
        user = _check_user(user, "server.api_keys")
        for value in hashes if isinstance(hashes, list) else [hashes]:
            ring.entries.append((user, KeyHash.parse(value, f"server.api_keys.{user}")))
    key_file = cfg.get("server.api_keys_file")
    if key_file:
        _check_private(Path(key_file), bool(cfg.get("server.allow_insecure_keys_file")))
        for key, user in load_yaml_file(key_file, "API keys file").items():
            ring.add_plain(_check_plain(key, key_file), _check_user(user, key_file))
    for item in filter(None, (part.strip() for part in environ.get(ENV_KEYS, "").split(","))):
        user, sep, key = item.partition(":")
        if not sep:
            raise ConfigError(f"{ENV_KEYS} entries are USER:KEY, found one without ':'",
                              hint="e.g. DEMOD_VOICE_API_KEYS=alice:KEY1,bob:KEY2")
        ring.add_plain(_check_plain(key, ENV_KEYS), _check_user(user, ENV_KEYS))
    return ring


def key_from_headers(headers) -> str | None:
    """The API key a request carries: ``Authorization: Bearer KEY`` or ``X-API-Key``."""
    value = headers.get("authorization", "")
    if value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return headers.get("x-api-key") or None
