"""After the build: does every ELF file of the given store paths find each DT_NEEDED through its run path?

nix/ci/check.sh runs this over the CUDA flavour's Python environment closure (torch, torchaudio,
onnxruntime-gpu, every nvidia wheel), independent of build logs (a cached build prints none).
A library found nowhere is allowed only by name, with its reason, below; anything else fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Left unresolved on purpose (nix/wheel-fixups.nix); every other DT_NEEDED must resolve.
ALLOWED = {
    "libcuda.so.1": "the NVIDIA driver's; found at run time in /run/opengl-driver/lib",
    "libmlx5.so.1": "cuFile/NVSHMEM RDMA transport (optional plugin, never loaded here)",
    "librdmacm.so.1": "cuFile RDMA transport (optional)",
    "libibverbs.so.1": "cuFile RDMA transport (optional)",
    "libmpi.so.40": "NVSHMEM MPI bootstrap (optional)",
    "libpmix.so.2": "NVSHMEM PMIx bootstrap (optional)",
    "liboshmem.so.40": "NVSHMEM OpenSHMEM bootstrap (optional)",
    "libfabric.so.1": "NVSHMEM libfabric transport (optional)",
    "libucs.so.0": "NVSHMEM UCX transport (optional)",
    "libucp.so.0": "NVSHMEM UCX transport (optional)",
    "libnvinfer.so.10": "onnxruntime-gpu's TensorRT provider (TensorRT is not in the lock)",
    "libnvinfer_plugin.so.10": "onnxruntime-gpu's TensorRT provider",
    "libnvonnxparser.so.10": "onnxruntime-gpu's TensorRT provider",
}
WANTED = ("-torch-", "-torchaudio-", "-onnxruntime-gpu-", "-nvidia-")


def elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def patchelf(flag: str, path: Path) -> list[str] | None:
    proc = subprocess.run(["patchelf", flag, str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return proc.stdout.strip().replace(":", " ").split() if flag == "--print-rpath" else proc.stdout.split()


def main(env: str) -> int:
    closure = subprocess.run(["nix-store", "-qR", env], capture_output=True, text=True, check=True).stdout.split()
    roots = [Path(p) for p in closure if any(w in Path(p).name for w in WANTED)]
    names = sorted({"-".join(r.name.split("-")[1:-1]) for r in roots})
    files = unresolved_count = 0
    unresolved: Counter[str] = Counter()
    where: dict[str, str] = {}
    for root in roots:
        for dirpath, _dirs, entries in os.walk(root):
            for entry in entries:
                path = Path(dirpath) / entry
                if path.is_symlink() or ".so" not in entry or not elf(path):
                    continue
                needed = patchelf("--print-needed", path)
                if needed is None:
                    continue
                files += 1
                rpath = [e.replace("$ORIGIN", str(path.parent)) for e in patchelf("--print-rpath", path) or []]
                for lib in needed:
                    if not any((Path(d) / lib).exists() for d in rpath):
                        unresolved[lib] += 1
                        where.setdefault(lib, str(path))
                        unresolved_count += 1
    print(f"   {files} ELF files in {len(roots)} store paths ({', '.join(names)})")
    bad = {lib: n for lib, n in unresolved.items() if lib not in ALLOWED}
    for lib, n in sorted(unresolved.items()):
        print(f"   unresolved {lib} ({n} files): {ALLOWED.get(lib, 'NOT ALLOWED, e.g. ' + where[lib])}")
    if not roots or bad:
        print(f"error: {len(bad)} libraries unresolved: {', '.join(sorted(bad))}" if bad else "error: nothing to check")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
