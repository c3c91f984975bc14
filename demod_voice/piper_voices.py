"""Piper voices by name: the Piper voices repository's index, and downloads checked against it.

``voices available`` and ``voices download NAME`` read ``voices.json`` of the
`rhasspy/piper-voices` repository on the model hub at a pinned revision
(``REVISION``; ``HF_ENDPOINT`` names a mirror), over the hub's plain HTTP ``resolve``
URLs, each transfer bounded (``outbound``: a deadline, the index's size, at most
``INDEX_MAX_BYTES`` for the index itself, which is also capped at ``INDEX_MAX_ENTRIES``
voices and kept parsed in a compact form). The index is kept in ``<cache_dir>/piper-voices/<revision>/``
and read from there afterwards, so ``available`` works offline once it has run.

Pins. The index lists every file of a voice with its size and md5 (it has no
sha256). A downloaded file is accepted only when its size and md5 match the index
at the pinned revision; otherwise it is deleted and the download fails. Its sha256
is then recorded beside it (``.demod-verified.json`` in the voices folder), and from
then on that sha256 is its pin: a later download re-uses a file only while it still
matches its record, and fetches it again otherwise.

A voice is stored under ``<data_dir>/voices/`` at its path in the repository
(``en/en_US/lessac/medium/en_US-lessac-medium.onnx`` and ``.onnx.json``), where
``piper-infer NAME``, ``voices list``, batch and the server find it (the voice
search is recursive).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from demod_voice.errors import EngineError, InputError, UsageError, missing_extra

_LOGGER = logging.getLogger(__name__)

REPO = "rhasspy/piper-voices"
#: The pinned revision of the voices repository (a release tag of it).
REVISION = "v1.0.0"
INDEX = "voices.json"
COMPACT = "voices.compact.json"
#: Bounds on the index (the real one is about 1 MB with a few hundred voices): a hostile mirror's is refused.
INDEX_MAX_BYTES = 20 * 1024 * 1024
INDEX_MAX_ENTRIES = 10_000
_KEY = re.compile(r"^(?P<code>(?P<family>[a-z]{2,3})(?:_[A-Za-z0-9]+)?)-(?P<name>[A-Za-z0-9_]+)-(?P<quality>[a-z_]+)$")


@dataclass(frozen=True)
class VoiceFile:
    path: str
    """Path inside the repository (and inside ``<data_dir>/voices``)."""
    size: int | None
    md5: str | None


@dataclass(frozen=True)
class IndexVoice:
    """One voice of the index."""

    key: str
    language: str
    quality: str
    speakers: int
    files: tuple[VoiceFile, ...]
    aliases: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def model(self) -> VoiceFile | None:
        return next((f for f in self.files if f.path.endswith(".onnx")), None)


def endpoint() -> str:
    from demod_voice.models import DEFAULT_HUB

    return os.environ.get("HF_ENDPOINT", DEFAULT_HUB).rstrip("/")


def file_url(path: str) -> str:
    return f"{endpoint()}/{REPO}/resolve/{REVISION}/{path}"


def voices_dir(cfg) -> Path:
    """Where downloaded voices live (searched by ``piper-infer NAME`` and ``voices list``)."""
    return Path(cfg.data_dir) / "voices"


def _index_dir(cfg) -> Path:
    return Path(cfg.cache_dir) / "piper-voices" / REVISION


# --- the index ----------------------------------------------------------------------

def parse_index(data: object, origin: str) -> dict[str, IndexVoice]:
    """``voices.json`` -> voices by key; entries with unsafe or missing file paths are refused."""
    if not isinstance(data, dict):
        raise InputError(f"{origin} is not a Piper voices index (a JSON object of voices)")
    if len(data) > INDEX_MAX_ENTRIES:
        raise InputError(f"{origin} lists {len(data)} voices; more than {INDEX_MAX_ENTRIES} is not a real index",
                         hint="delete it, and check HF_ENDPOINT")
    out: dict[str, IndexVoice] = {}
    for key, spec in data.items():
        try:
            files = []
            for path, meta in (spec.get("files") or {}).items():
                parts = Path(path).parts
                if Path(path).is_absolute() or ".." in parts or not parts or "\\" in path:
                    raise ValueError(f"unsafe file path {path!r}")
                size = meta.get("size_bytes")
                files.append(VoiceFile(str(path), int(size) if size is not None else None,
                                       str(meta["md5_digest"]).lower() if meta.get("md5_digest") else None))
            language = spec.get("language") or {}
            voice = IndexVoice(key=str(key), language=str(language.get("code", "")), quality=str(spec.get("quality", "")),
                               speakers=int(spec.get("num_speakers") or 1), files=tuple(files),
                               aliases=tuple(str(a) for a in spec.get("aliases") or ()))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{origin}: voice '{key}' has a bad entry ({exc})",
                             hint="delete the cached index to fetch it again") from None
        if voice.model is None or not any(f.path == voice.model.path + ".json" for f in voice.files):
            _LOGGER.info("index %s: skipping %s (no .onnx + .onnx.json)", origin, key)
            continue
        out[voice.key] = voice
    return out


def load_index(cfg, say: Callable[[str], None] = lambda m: None, quiet: bool = False) -> dict[str, IndexVoice]:
    """The index at the pinned revision: the cached copy, else downloaded once (needs the network)."""
    from demod_voice import offline

    cached = _index_dir(cfg) / INDEX
    if not cached.is_file():
        offline.refuse(f"reading the Piper voices index ({REPO}@{REVISION})")
        say(f"reading the Piper voices index from {REPO}@{REVISION}")
        _download([(INDEX, None)], _index_dir(cfg), quiet, what="the Piper voices index",
                  manual=f"put {INDEX} (from {file_url(INDEX)}) in {_index_dir(cfg)}")
    compact = _index_dir(cfg) / COMPACT
    try:
        if compact.is_file() and compact.stat().st_mtime_ns >= cached.stat().st_mtime_ns:
            return _from_compact(json.loads(compact.read_bytes()))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass  # parsed again below
    try:
        if cached.stat().st_size > INDEX_MAX_BYTES:
            raise InputError(f"the Piper voices index {cached} is larger than {INDEX_MAX_BYTES >> 20} MB",
                             hint="delete it; a real index is about 1 MB")
        data = json.loads(cached.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"the cached Piper voices index {cached} is unreadable: {exc}",
                         hint="delete it to fetch it again") from None
    index = parse_index(data, str(cached))
    from demod_voice.paths import atomic_write_bytes

    try:  # parsed once: later runs read the compact form (only what is used, a fraction of the size)
        atomic_write_bytes(compact, json.dumps([_to_compact(v) for v in index.values()]).encode())
    except OSError:
        pass
    return index


def _to_compact(voice: IndexVoice) -> list:
    return [voice.key, voice.language, voice.quality, voice.speakers, [[f.path, f.size, f.md5] for f in voice.files],
            list(voice.aliases)]


def _from_compact(rows: list) -> dict[str, IndexVoice]:
    if not isinstance(rows, list) or len(rows) > INDEX_MAX_ENTRIES:
        raise ValueError("not a compact index")
    out = {}
    for key, language, quality, speakers, files, aliases in rows:
        out[key] = IndexVoice(str(key), str(language), str(quality), int(speakers),
                              tuple(VoiceFile(str(p), s if s is None else int(s), m) for p, s, m in files),
                              tuple(map(str, aliases)))
    return out


def find(index: dict[str, IndexVoice], name: str) -> IndexVoice:
    if name in index:
        return index[name]
    for voice in index.values():
        if name in voice.aliases:
            return voice
    close = difflib.get_close_matches(name, index, n=3)
    raise InputError(f"the Piper voices index ({REPO}@{REVISION}) has no voice '{name}'",
                     hint=("did you mean " + ", ".join(close) + "? ") if close else
                     "list them: demod-voice voices available --language en")


def matches_language(voice: IndexVoice, language: str | None) -> bool:
    """``en`` matches en_US and en_GB; ``en_US`` / ``en-us`` match en_US only."""
    if not language:
        return True
    wanted = language.replace("-", "_").lower()
    code = voice.language.lower()
    return code == wanted or code.split("_")[0] == wanted


# --- downloads ------------------------------------------------------------------------

def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def file_state(folder: Path, spec: VoiceFile) -> str:
    """"ok" (matches its recorded sha256 pin), "unchecked" (present, not yet checked) or "missing"."""
    from demod_voice import models

    path = folder / spec.path
    if not path.is_file():
        return "missing"
    book = models._read_json(folder / models.VERIFIED_FILE).get(spec.path) or {}
    if book.get("stamp") == models._stamp(path) and book.get("md5") == spec.md5:
        return "ok"
    return "unchecked"


def verify_file(folder: Path, spec: VoiceFile) -> str:
    """Check size and md5 against the index; on success record the file's sha256 as its pin. '' when good."""
    from demod_voice import models

    path = folder / spec.path
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        return f"expected {spec.size} bytes, found {size}"
    if spec.md5 is not None and _md5(path) != spec.md5:
        return f"its md5 is not the index's {spec.md5}"
    models.record_verified(folder, spec.path, models.sha256_file(path))
    book = models._read_json(folder / models.VERIFIED_FILE)
    book[spec.path]["md5"] = spec.md5
    models._write_json(folder / models.VERIFIED_FILE, book)
    return ""


def _download(specs: list[tuple[str, int | None]], folder: Path, quiet: bool, what: str, manual: str) -> None:
    """Fetch ``(path, size)`` files of the voices repository into ``folder``, each bounded (``outbound``).

    A file whose announced size (HEAD) differs from the index's is refused before any byte is read, and a
    download stops at the index's size; one without a size in the index (the index itself) stops at
    ``INDEX_MAX_BYTES``. The whole transfer of one file has a deadline (``outbound.transfer_timeout_s``: at least 50 KB/s)."""
    try:
        import httpx
    except ImportError:
        raise missing_extra("httpx", "server") from None

    from demod_voice import outbound

    path = specs[0][0]
    try:
        for path, size in specs:
            url = file_url(path)
            status, announced = outbound.head(url, what=path, timeout_s=30)
            if status == 404:
                raise EngineError(f"{REPO}@{REVISION} has no file {path}", hint=f"check HF_ENDPOINT ({endpoint()}), or {manual}")
            if size is not None and announced is not None and announced != size:
                raise EngineError(f"the mirror announces {path} as {announced} bytes, the index as {size}; "
                                  "not downloaded", hint=f"check HF_ENDPOINT ({endpoint()}), or {manual}")
            cap = size if size is not None else INDEX_MAX_BYTES
            outbound.download(url, folder / path, what=path, timeout_s=outbound.transfer_timeout_s(cap), size=size, max_bytes=cap)
    except outbound.HTTPStatus as exc:
        raise EngineError(f"downloading {what} from {endpoint()} failed: HTTP {exc.status} for {path}",
                          hint=f"run it again (finished files are kept), or {manual}") from None
    except outbound.TooLarge as exc:
        raise EngineError(f"downloading {what} stopped: {exc.message}", hint=f"check HF_ENDPOINT, or {manual}") from None
    except outbound.OutboundTimeout:
        raise EngineError(f"downloading {what} from {endpoint()} took too long ({path})",
                          hint=f"run it again (finished files are kept), or {manual}") from None
    except (httpx.HTTPError, OSError) as exc:
        raise EngineError(f"cannot reach the model hub at {endpoint()} to download {what}: {_first_line(exc)}",
                          hint=f"connect to the network and run it again, or {manual}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:200]) if text else type(exc).__name__


def manual_hint(cfg, name: str, voice: IndexVoice | None = None) -> str:
    """What to put where, by hand, for voice ``name`` (from the index, else from piper's naming scheme)."""
    if voice is not None:
        files = [f.path for f in voice.files if f.path.endswith((".onnx", ".onnx.json"))]
    else:
        match = _KEY.match(name)
        base = (f"{match['family']}/{match['code']}/{match['name']}/{match['quality']}/"
                if match else "")
        files = [f"{base}{name}.onnx", f"{base}{name}.onnx.json"]
    folder = voices_dir(cfg) / Path(files[0]).parent
    names = " and ".join(Path(f).name for f in files)
    return f"put {names} (from {file_url(files[0]).rsplit('/', 1)[0]}/) in {folder}"


def download(cfg, name: str, *, force: bool = False, quiet: bool = False,
             say: Callable[[str], None] = lambda m: None) -> Path:
    """Download voice ``name`` (or an alias) and check it against the index; returns its ``.onnx``."""
    from demod_voice import offline
    from demod_voice.paths import validate_name

    validate_name(name, "Piper voice name")
    try:
        index = load_index(cfg, say, quiet)
    except (EngineError, UsageError) as exc:
        raise type(exc)(f"cannot download Piper voice '{name}': {exc.message}",
                        hint=manual_hint(cfg, name)) from None
    voice = find(index, name)
    folder = voices_dir(cfg)
    todo = [f for f in voice.files if force or file_state(folder, f) != "ok"]
    todo = [f for f in todo if force or file_state(folder, f) == "missing" or verify_file(folder, f)]
    if todo:
        offline.refuse(f"downloading Piper voice {voice.key} ({', '.join(Path(f.path).name for f in todo)})")
        size = sum(f.size or 0 for f in todo)
        from demod_voice.models import human_size

        say(f"downloading {voice.key} ({human_size(size)}) from {REPO}@{REVISION}")
        for spec in todo:
            (folder / spec.path).unlink(missing_ok=True)
        _download([(f.path, f.size) for f in todo], folder, quiet, what=f"Piper voice {voice.key}",
                  manual=manual_hint(cfg, voice.key, voice))
        for spec in todo:
            problem = verify_file(folder, spec)
            if problem:
                (folder / spec.path).unlink(missing_ok=True)
                raise EngineError(f"downloaded {spec.path} of {voice.key} failed its check ({problem}); "
                                  "the file was deleted",
                                  hint="run it again; if it fails again the mirror serves a different file")
    return folder / voice.model.path
