"""autoPatchelf for nix/ci/pkgs, with nixpkgs' semantics.

Every dynamically linked ELF file (shared object or executable) under --paths gets each DT_NEEDED
library resolved, in this order: beside the file through its own $ORIGIN run paths when those stay
inside the same store path; in the paths being patched; in --libs (inputs' lib/ folders, not
recursive); in --extra-libs (addAutoPatchelfSearchPath, recursive); in the lib/ folders of
--runtime-dependency. The run path becomes the folders where they were found. A library found
nowhere and not named by --ignore-missing (or "*") fails the build: every such file and library is
printed, then the exit status is 1.

DT_NEEDED and run paths are read with `patchelf --print-needed/--print-rpath` (pyelftools is not in
uv.lock); the ELF header (class, machine, type) is read here.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
from pathlib import Path

ET_EXEC, ET_DYN = 2, 3


def elf_header(path: Path) -> tuple[int, int, int] | None:
    """(class, machine, type) of an ELF file, None for anything else."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    endian = "<" if head[5] == 1 else ">"
    e_type, e_machine = struct.unpack_from(endian + "HH", head, 16)
    return head[4], e_machine, e_type


def walk(root: Path):
    if root.is_file() and not root.is_symlink():
        yield root
        return
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                yield path


def patchelf(*args: str) -> str:
    proc = subprocess.run(["patchelf", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"patchelf {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def has_dynamic(path: Path) -> bool:
    proc = subprocess.run(["patchelf", "--print-needed", str(path)], capture_output=True, text=True)
    return proc.returncode == 0


class Libraries:
    """soname -> folders holding it, per (class, machine)."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, int, int], list[Path]] = {}

    def add(self, folder: Path, recursive: bool) -> None:
        if not folder.is_dir():
            return
        files = walk(folder) if recursive else (p for p in folder.iterdir())
        for path in files:
            if ".so" not in path.name:
                continue
            header = elf_header(path.resolve()) if path.exists() else None
            if header is None or header[2] != ET_DYN:
                continue
            key = (path.name, header[0], header[1])
            dirs = self.found.setdefault(key, [])
            if path.parent not in dirs:
                dirs.append(path.parent)

    def find(self, name: str, cls: int, machine: int) -> Path | None:
        dirs = self.found.get((name, cls, machine))
        return dirs[0] if dirs else None


def store_root(path: Path) -> Path:
    parts = path.parts
    return Path(*parts[:4]) if len(parts) >= 4 and parts[1:3] == ("nix", "store") else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paths", nargs="*", default=[])
    parser.add_argument("--libs", nargs="*", default=[])
    parser.add_argument("--extra-libs", nargs="*", default=[])
    parser.add_argument("--ignore-missing", action="append", default=[])
    parser.add_argument("--runtime-dependency", action="append", default=[])
    args = parser.parse_args(argv)
    ignore_all = any(name in ("*", "1") for name in args.ignore_missing)

    libraries = Libraries()
    for path in args.paths:
        libraries.add(Path(path), recursive=True)
    for path in args.libs:
        libraries.add(Path(path), recursive=False)
    for path in args.extra_libs:
        libraries.add(Path(path), recursive=True)
    runtime = [Path(p) / "lib" for p in args.runtime_dependency]

    missing: list[tuple[Path, str]] = []
    patched = ignored = 0
    for root in args.paths:
        for path in walk(Path(root)):
            header = elf_header(path)
            if header is None or header[2] not in (ET_EXEC, ET_DYN) or not has_dynamic(path):
                continue
            cls, machine, _ = header
            needed = patchelf("--print-needed", str(path)).split()
            old_rpath = [e for e in patchelf("--print-rpath", str(path)).strip().split(":") if e]
            own = store_root(path)
            rpath: list[str] = []
            # $ORIGIN entries that stay inside this store path keep working after the move.
            origin_dirs = []
            for entry in old_rpath:
                if entry.startswith("$ORIGIN"):
                    target = Path(os.path.normpath(entry.replace("$ORIGIN", str(path.parent), 1)))
                    if target == own or own in target.parents:
                        origin_dirs.append((entry, target))
            for name in needed:
                where = next(((e, t) for e, t in origin_dirs if (t / name).exists()), None)
                if where is not None:
                    entry = where[0]
                else:
                    folder = libraries.find(name, cls, machine)
                    if folder is None:
                        folder = next((d for d in runtime if (d / name).exists()), None)
                    if folder is None:
                        if ignore_all or name in args.ignore_missing:
                            print(f"auto-patchelf: ignoring missing {name} wanted by {path}")
                            ignored += 1
                        else:
                            missing.append((path, name))
                        continue
                    entry = str(folder)
                if entry not in rpath:
                    rpath.append(entry)
            for folder in runtime:
                if str(folder) not in rpath:
                    rpath.append(str(folder))
            if rpath != old_rpath:
                mode = path.stat().st_mode
                path.chmod(mode | 0o200)
                patchelf("--set-rpath", ":".join(rpath), str(path))
                path.chmod(mode)
            patched += 1
    for path, name in missing:
        print(f"error: auto-patchelf could not satisfy dependency {name} wanted by {path}", file=sys.stderr)
    if missing:
        print(f"auto-patchelf failed to find all the required dependencies ({len(missing)} missing); add them "
              "to buildInputs, addAutoPatchelfSearchPath, or autoPatchelfIgnoreMissingDeps", file=sys.stderr)
        return 1
    print(f"auto-patchelf: {patched} ELF files resolved, {ignored} missing libraries ignored by name")
    return 0


if __name__ == "__main__":
    sys.exit(main())
