"""Read the shared libraries an ELF file asks for (DT_NEEDED), without binutils.

Enough of the ELF64 little-endian format for wheels on x86_64/aarch64 Linux:
the program headers locate the dynamic section and the string table it points into.
"""

from __future__ import annotations

import struct
from pathlib import Path

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


def needed_libraries(path: Path) -> list[str] | None:
    """NEEDED entries of ``path``, [] for a static ELF, None when it is no ELF64-LE file."""
    with open(path, "rb") as fh:
        header = fh.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return None
        (phoff,) = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
        loads, dynamic = [], None
        for i in range(phnum):
            p_type, _, offset, vaddr, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", table, i * phentsize)
            if p_type == PT_LOAD:
                loads.append((vaddr, offset, filesz))
            elif p_type == PT_DYNAMIC:
                dynamic = (offset, filesz)
        if dynamic is None:
            return []
        fh.seek(dynamic[0])
        raw = fh.read(dynamic[1])
        entries = []
        for pos in range(0, len(raw) - 15, 16):
            tag, value = struct.unpack_from("<qQ", raw, pos)
            if tag == DT_NULL:
                break
            entries.append((tag, value))
        strtab = next((value for tag, value in entries if tag == DT_STRTAB), None)
        base = next((off + strtab - va for va, off, size in loads if strtab is not None and va <= strtab < va + size),
                    None)
        if base is None:
            return []
        names = []
        for tag, value in entries:
            if tag == DT_NEEDED:
                fh.seek(base + value)
                chunk = fh.read(256)
                names.append(chunk.split(b"\0", 1)[0].decode())
        return names
