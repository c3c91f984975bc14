"""Known models: where they come from, what their files must hash to, where they live.

Each ``ModelEntry`` names a model hub repository at a pinned revision (a
commit, so a re-upload upstream cannot change what users get), its files with
their sizes and sha256 digests, and its licence. ``pull`` downloads from the
hub's resolve URLs (``HF_ENDPOINT`` names a mirror) through ``outbound``: each
file has a deadline for the whole transfer and stops at its manifest size (a
mirror is not trusted to behave), and a dropped connection is resumed once with
an HTTP Range request. Then every file's sha256 is checked: a file that does not match is
deleted and the pull fails. Files already present and verified are skipped, so
re-running an interrupted pull only fetches what is missing.

A model lives in ``<data_dir>/models/<name>/``. Extra entries (more Piper
voices, fine-tuned XTTS checkpoints, mirrors) come from YAML/JSON files named
in the config key ``models.registry``; they use the same fields as the
built-in ones (see docs/models.md).

Where no public sha256 could be confirmed for a file, its ``sha256`` is
``None``: it is then verified by size only, and ``models list``/``verify`` say
so. Nothing here is guessed.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from demod_voice.errors import EngineError, InputError, ModelNotFoundError, UsageError, missing_extra
from demod_voice.paths import atomic_output, check_output

_LOGGER = logging.getLogger(__name__)

VERIFIED_FILE = ".demod-verified.json"
LICENSES_FILE = "accepted-licenses.json"


@dataclass(frozen=True)
class ModelFile:
    """One file of a model."""

    path: str
    """Path inside the repository (and inside the local model folder)."""
    size: int | None = None
    """Size in bytes, when known."""
    sha256: str | None = None
    """Hex sha256 digest, or None when no public digest could be confirmed (size-only check)."""
    required: bool = True
    """False for files the engine can do without."""


@dataclass(frozen=True)
class ModelEntry:
    """A model the registry knows how to fetch and check."""

    name: str
    kind: str
    """"xtts", "rvc-aux", "piper", ..."""
    repo: str
    """Model hub repository, e.g. coqui/XTTS-v2."""
    revision: str
    """Pinned commit of that repository."""
    files: tuple[ModelFile, ...]
    license: str
    license_url: str = ""
    license_gate: bool = False
    """True: 'models pull' needs --accept-license once."""
    license_summary: str = ""
    description: str = ""
    license_id: str = ""
    """Short licence key an operator accepts, e.g. in NixOS ``acceptLicenses`` (coqui-public-model-license)."""

    @property
    def total_size(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["files"] = [asdict(f) for f in self.files]
        return data


# --- registry -----------------------------------------------------------------------

def _entry_from_dict(name: str, data: dict, origin: str) -> ModelEntry:
    def bad(msg: str) -> InputError:
        return InputError(f"model registry {origin}: entry '{name}' {msg}", hint="see docs/models.md for the fields")

    if not isinstance(data, dict):
        raise bad("must be a mapping")
    try:
        files = tuple(
            ModelFile(str(f["path"]), int(f["size"]) if f.get("size") is not None else None,
                      str(f["sha256"]).lower() if f.get("sha256") else None, bool(f.get("required", True)))
            for f in data["files"])
        entry = ModelEntry(name=name, kind=str(data.get("kind", "other")), repo=str(data["repo"]),
                           revision=str(data["revision"]), files=files, license=str(data.get("license", "unknown")),
                           license_url=str(data.get("license_url", "")),
                           license_gate=bool(data.get("license_gate", False)),
                           license_summary=str(data.get("license_summary", "")),
                           description=str(data.get("description", "")),
                           license_id=str(data.get("license_id", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"is missing or has a bad field: {exc}") from None
    for f in entry.files:
        if f.sha256 is not None and (len(f.sha256) != 64 or any(c not in "0123456789abcdef" for c in f.sha256)):
            raise bad(f"has a malformed sha256 for {f.path}")
        if Path(f.path).is_absolute() or ".." in Path(f.path).parts:
            raise bad(f"has an unsafe file path {f.path!r}")
    return entry


#: The built-in registry, as data: the same file the Nix flake reads (lib.fetchModel, nix/models.nix),
#: so `models pull` and the NixOS module fetch the same URLs and check the same sha256 digests.
MANIFEST_FILE = Path(__file__).with_name("models_manifest.json")


def load_manifest(path: Path = MANIFEST_FILE) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


_MANIFEST = load_manifest()
#: Where `pull` downloads from unless HF_ENDPOINT names a mirror.
DEFAULT_HUB: str = _MANIFEST["hub"]
#: Pins checked against several independent public manifests of these repositories.
BUILTIN: dict[str, ModelEntry] = {
    name: _entry_from_dict(name, spec, str(MANIFEST_FILE)) for name, spec in _MANIFEST["models"].items()
}


def file_url(entry: ModelEntry, path: str, endpoint: str | None = None) -> str:
    """The URL a model file is fetched from: the hub's resolve URL at the pinned revision."""
    return f"{(endpoint or DEFAULT_HUB).rstrip('/')}/{entry.repo}/resolve/{entry.revision}/{path}"


def registry(cfg) -> dict[str, ModelEntry]:
    """Built-in entries plus those from the files in config ``models.registry``."""
    from demod_voice.config import load_yaml_file
    from demod_voice.paths import validate_name

    entries = dict(BUILTIN)
    for file in cfg.get("models.registry") or []:
        data = load_yaml_file(file, what="model registry")
        for name, spec in data.items():
            validate_name(str(name), "model name")
            entries[str(name)] = _entry_from_dict(str(name), spec, str(file))
    return entries


def get(name: str, cfg) -> ModelEntry:
    entries = registry(cfg)
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, entries, n=2)
    raise InputError(f"unknown model '{name}'",
                     hint=("did you mean " + ", ".join(close) + "?") if close else "known: " + ", ".join(entries))


def local_dir(entry: ModelEntry, cfg) -> Path:
    from demod_voice.paths import safe_join

    return safe_join(Path(cfg.data_dir) / "models", entry.name, what="model name")


# --- file checks --------------------------------------------------------------------

def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 << 20):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    from demod_voice.paths import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True).encode())


def _stamp(path: Path) -> str:
    from demod_voice.paths import file_identity

    return file_identity(path)


def record_verified(folder: Path, name: str, sha256: str, original: str | None = None) -> None:
    """Remember that ``folder/name`` (as it is now) was checked, so pulls skip re-hashing it."""
    book = _read_json(folder / VERIFIED_FILE)
    book[name] = {"stamp": _stamp(folder / name), "sha256": sha256}
    if original:
        book[name]["rewritten_from"] = original
    _write_json(folder / VERIFIED_FILE, book)


def record_rewrite(folder: Path, name: str) -> None:
    """coqui-tts rewrote a verified file on first load: record its new digest, tied to the verified original.

    Only done when the file had been verified before the rewrite; an unverified
    file stays unverified.
    """
    folder = Path(folder)
    book = _read_json(folder / VERIFIED_FILE)
    before = book.get(name)
    if not before:
        return
    record_verified(folder, name, sha256_file(folder / name), original=before.get("rewritten_from") or before["sha256"])


@dataclass
class FileStatus:
    """The state of one file on disk."""

    path: str
    state: str
    """"ok", "ok (size only)", "ok (rewritten by coqui-tts)", "missing", "size mismatch", "sha256 mismatch", "unchecked"."""
    size: int | None = None
    detail: str = ""

    @property
    def good(self) -> bool:
        return self.state.startswith("ok")


def check_file(entry: ModelEntry, folder: Path, spec: ModelFile, full: bool = True) -> FileStatus:
    """Check one file: presence, size, and (``full``) its sha256."""
    path = folder / spec.path
    if not path.is_file():
        return FileStatus(spec.path, "missing")
    size = path.stat().st_size
    book = _read_json(folder / VERIFIED_FILE).get(spec.path) or {}
    rewritten = book.get("rewritten_from") == spec.sha256 and spec.sha256 is not None
    if spec.size is not None and size != spec.size and not rewritten:
        return FileStatus(spec.path, "size mismatch", size, f"expected {spec.size} bytes, found {size}")
    if spec.sha256 is None:
        return FileStatus(spec.path, "ok (size only)", size, "no published sha256 is pinned for this file")
    if not full:
        known = book.get("stamp") == _stamp(path) and (book.get("sha256") == spec.sha256 or rewritten)
        return FileStatus(spec.path, "ok" if known else "unchecked", size)
    digest = sha256_file(path)
    if digest == spec.sha256:
        record_verified(folder, spec.path, digest)
        return FileStatus(spec.path, "ok", size)
    if rewritten and digest == book.get("sha256"):
        return FileStatus(spec.path, "ok (rewritten by coqui-tts)", size,
                          "the verified original was converted by coqui-tts on first load")
    return FileStatus(spec.path, "sha256 mismatch", size, f"expected {spec.sha256}, found {digest}")


def status(entry: ModelEntry, cfg, full: bool = False) -> list[FileStatus]:
    folder = local_dir(entry, cfg)
    return [check_file(entry, folder, spec, full=full) for spec in entry.files]


def summary(statuses: list[FileStatus], entry: ModelEntry) -> str:
    """One word for ``models list``."""
    required = {f.path for f in entry.files if f.required}
    states = {s.path: s for s in statuses}
    if all(states[p].state == "missing" for p in required):
        return "not installed"
    if any(not states[p].good and states[p].state != "unchecked" for p in required):
        return "incomplete"
    if any(states[p].state == "unchecked" for p in required):
        return "installed (unverified)"
    return "installed"


# --- licences -----------------------------------------------------------------------

def _licenses_path(cfg) -> Path:
    return Path(cfg.data_dir) / "models" / LICENSES_FILE


def license_accepted(entry: ModelEntry, cfg) -> bool:
    record = _read_json(_licenses_path(cfg)).get(entry.name)
    return bool(record) and record.get("license") == entry.license


def accept_license(entry: ModelEntry, cfg) -> None:
    book = _read_json(_licenses_path(cfg))
    book[entry.name] = {"license": entry.license, "url": entry.license_url,
                        "accepted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_json(_licenses_path(cfg), book)


def license_notice(entry: ModelEntry) -> str:
    lines = [f"{entry.name} is licensed under the {entry.license}.", entry.license_summary or "",
             f"Licence: {entry.license_url}" if entry.license_url else ""]
    return "\n".join(line for line in lines if line)


# --- pulling ------------------------------------------------------------------------

def pull(entry: ModelEntry, cfg, *, accept: bool = False, force: bool = False, quiet: bool = False,
         say: Callable[[str], None] = lambda m: None) -> list[FileStatus]:
    """Download every file not already present and verified; check sha256; return the final states.

    An unreachable hub (or offline mode) is one clear error after one attempt, naming each
    missing file, its sha256 and the folder to place it in by hand.
    """
    from demod_voice import offline, progress

    if entry.license_gate and not license_accepted(entry, cfg):
        if not accept:
            raise UsageError(f"the licence of {entry.name} must be accepted before it is downloaded: "
                             f"{entry.license} ({entry.license_url})",
                             hint=f"read it, then run: demod-voice models pull {entry.name} --accept-license")
        accept_license(entry, cfg)
        say(f"accepted the {entry.license} for {entry.name} (remembered in {_licenses_path(cfg)})")
    try:
        from huggingface_hub import constants as hub_constants
    except ImportError:
        raise missing_extra("huggingface_hub", "xtts") from None
    progress.adopt_logger("huggingface_hub")  # its notices print once, through our handler
    folder = local_dir(entry, cfg)
    missing = [spec for spec in entry.files if force or not check_file(entry, folder, spec, full=False).good]
    if missing:
        try:
            offline.refuse(f"downloading {entry.name} ({', '.join(spec.path for spec in missing)})")
        except UsageError as exc:
            raise UsageError(exc.message, hint=placement_hint(missing, folder, entry.name)) from None
        if hub_constants.is_offline_mode():
            raise UsageError(f"downloading {entry.name} needs the network, but HF_HUB_OFFLINE is set",
                             hint=placement_hint(missing, folder, entry.name))
    folder.mkdir(parents=True, exist_ok=True)
    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_HUB)
    results: list[FileStatus] = []
    with progress.bar(len(missing), desc=f"pull {entry.name}", unit="file", quiet=quiet, delay=0) as files:
        for spec in entry.files:
            current = check_file(entry, folder, spec, full=False)
            if current.good and not force:
                results.append(current)
                continue
            target = folder / spec.path
            target.parent.mkdir(parents=True, exist_ok=True)  # nested paths (en/en_US/lessac/medium/...)
            check_output(target, f"model file {spec.path}", streams=False)  # no folder, device or FIFO there
            link = os.readlink(target) if target.is_symlink() else None
            if target.exists() and not force:
                current = check_file(entry, folder, spec, full=True)  # present but not yet checked: hash it
                if current.good:
                    results.append(current)
                    files.update(1)
                    files.refresh()  # drawn now: tqdm skips redraws within its interval, and fast files would never show
                    continue
                target.unlink()  # wrong size or digest: fetch it again
            elif force and target.exists():
                target.unlink()
            message = f"downloading {spec.path} ({_human(spec.size)}) from {entry.repo}@{entry.revision[:10]}"
            files.write(message, file=sys.stderr) if not files.disable else say(message)
            try:
                _download(entry, spec, folder, endpoint, force)
            except _HubMissing as exc:
                raise EngineError(f"the model hub at {endpoint} has no {exc.what}",
                                  hint=f"check HF_ENDPOINT or the registry entry, or "
                                       f"{placement_hint(missing, folder, entry.name)}") from None
            except OSError as exc:
                reason = " ".join(str(exc).split())[:160] or type(exc).__name__
                raise EngineError(f"cannot download {entry.name} from {endpoint}: {reason}",
                                  hint=f"check the network or HF_ENDPOINT and re-run the pull (finished files are "
                                       f"kept), or {placement_hint(missing, folder, entry.name)}") from None
            if link is not None:
                _restore_link(target, link)
            state = check_file(entry, folder, spec, full=True)
            if not state.good:
                target.unlink(missing_ok=True)
                raise EngineError(f"downloaded {spec.path} of {entry.name} failed its check ({state.state}: "
                                  f"{state.detail}); the file was deleted",
                                  hint="re-run the pull; if it fails again the mirror serves a different file")
            results.append(state)
            files.update(1)
            files.refresh()
    return results


class _HubMissing(Exception):
    """The hub answered, and it has no such repository, revision or file."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


#: The most a model file without a size in its entry may download (the largest known model is ~2 GB).
MAX_FILE_BYTES = 16 << 30


def _download(entry: ModelEntry, spec: ModelFile, folder: Path, endpoint: str, force: bool) -> None:
    """One file, bounded like every outbound call (``outbound``): a HEAD finds a missing file or an
    unreachable hub in one attempt and a size unlike the manifest's before any byte is read; the GET has a
    deadline for the whole transfer (``outbound.transfer_timeout_s``) and stops at the manifest size."""
    from demod_voice import outbound

    httpx = _http_client()
    url = file_url(entry, spec.path, endpoint)
    headers = _hub_headers()
    cap = spec.size if spec.size is not None else MAX_FILE_BYTES
    try:
        _check_announced_size(url, spec, headers, entry)
        outbound.download(url, folder / spec.path, what=spec.path, timeout_s=outbound.transfer_timeout_s(cap),
                          size=spec.size, max_bytes=cap, headers=headers, resume=True)
    except outbound.HTTPStatus as exc:
        raise OSError(f"HTTP {exc.status} for {spec.path}") from None
    except outbound.TooLarge as exc:
        raise EngineError(f"the mirror sent more of {spec.path} than the manifest's {_human(cap)}; stopped: "
                          f"{exc.message}", hint="check HF_ENDPOINT; the manifest pins every file's size") from None
    except outbound.OutboundTimeout:
        raise OSError(f"{spec.path} did not arrive within {outbound.transfer_timeout_s(cap):.0f} s "
                      f"(at least {outbound.MIN_TRANSFER_RATE // 1000} KB/s)") from None
    except httpx.HTTPError as exc:
        raise OSError(f"{type(exc).__name__} while fetching {spec.path}") from None


def _http_client():
    """httpx (or the hub client's httpx2), or the error naming the extra that brings it."""
    from demod_voice import outbound

    try:
        return outbound.http()[0]
    except ImportError:
        raise missing_extra("httpx", "server") from None


def _hub_headers() -> dict:
    """The hub client's own headers (its user agent, and the token of a logged-in user for gated repositories;
    httpx drops it on a redirect to another host)."""
    try:
        from huggingface_hub.utils import build_hf_headers

        return dict(build_hf_headers())
    except Exception:  # no hub client, or a token it cannot read: fetch anonymously
        return {}


#: The hub's ``X-Error-Code`` on a 404, and what is missing then.
_HUB_MISSING = {"RepoNotFound": "repo", "RevisionNotFound": "repo", "EntryNotFound": "file"}


def _check_announced_size(url: str, spec: ModelFile, headers: dict | None = None,
                          entry: ModelEntry | None = None) -> None:
    """A bounded HEAD (``outbound``): a repository, revision or file the hub does not have is ``_HubMissing``;
    a mirror that announces another size than the manifest's is refused before a byte is downloaded, so a
    hostile mirror cannot fill the disk under a small entry's name."""
    from demod_voice import outbound

    httpx = _http_client()
    try:
        answer = outbound.probe(url, what=spec.path, timeout_s=30, headers=headers)
    except (httpx.HTTPError, outbound.OutboundTimeout) as exc:
        raise OSError(f"{type(exc).__name__}: the hub did not answer") from None
    code = answer.headers.get("x-error-code", "")
    if answer.status_code == 404 or code in _HUB_MISSING:  # the hub answers 401 for a repository it hides
        repo, revision = (entry.repo, entry.revision) if entry else ("the repository", "pinned")
        raise _HubMissing(f"{spec.path} in {repo} at revision {revision}" if _HUB_MISSING.get(code, "file") == "file"
                          else f"{repo} at revision {revision} ({code})")
    if answer.status_code >= 400:
        raise OSError(f"HTTP {answer.status_code} for {spec.path}")
    announced = outbound.announced_size(answer)
    if spec.size is not None and announced is not None and announced != spec.size:
        raise EngineError(f"the mirror announces {spec.path} as {announced} bytes, the manifest as {spec.size}; "
                          "not downloaded", hint="check HF_ENDPOINT; the manifest pins every file's size")


def placement_hint(missing: list[ModelFile], folder: Path, name: str) -> str:
    """Where each missing file goes and what it must hash to, for an install by hand."""
    listed = ", ".join(f"{spec.path} (sha256 {spec.sha256 or 'not pinned'}"
                       f"{', ' + _human(spec.size) if spec.size else ''})" for spec in missing)
    return f"place the files by hand in {folder}: {listed}; then run 'demod-voice models verify {name}'"


def _restore_link(path: Path, link: str) -> None:
    """The hub client replaced a symlink with the downloaded file: move the file to where the link pointed
    (atomically, through the shared writer) and put the link back."""
    with atomic_output(path.parent / link, f"model file {path.name}") as tmp:
        shutil.move(path, tmp)
    path.symlink_to(link)


def verify(entry: ModelEntry, cfg) -> list[FileStatus]:
    folder = local_dir(entry, cfg)
    if not folder.is_dir():
        raise ModelNotFoundError(f"{entry.name} is not installed (no folder {folder})",
                                 hint=f"run: demod-voice models pull {entry.name}")
    return [check_file(entry, folder, spec, full=True) for spec in entry.files]


def _human(size: int | None) -> str:
    if size is None:
        return "size unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


human_size = _human


def size_label(entry: ModelEntry) -> str:
    """The download size for ``models list``: "unknown" (not "0 B") when the registry pins no sizes."""
    known = [f.size for f in entry.files if f.size is not None]
    if not known:
        return "unknown"
    return _human(sum(known)) if len(known) == len(entry.files) else f"over {_human(sum(known))}"
