"""Strip the symbol tables and debug info of a built bundle's shared libraries, keeping
only the copies the dynamic loader can still map.

    python packaging/strip_bundle.py DIR [DIR ...]      (packaging/build.sh runs it)

`strip --strip-unneeded` removes .symtab/.strtab/.debug_* and keeps the dynamic symbols
that loading needs. Wheels repaired by auditwheel have libraries edited by patchelf, and
for some of them (the OpenBLAS builds of NumPy and SciPy) strip writes a file whose
PT_LOAD segments no longer have offset == address modulo their alignment: ld.so refuses
it ("ELF load command address/offset not page-aligned") and the bundle cannot start. So
each library is stripped into a temporary copy, the copy's program headers are checked,
and it replaces the original only when they are sound. Prints what it saved and what it
left unstripped. Standard library only (run by the build's Python).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

PT_LOAD = 1
SHT_SYMTAB = 2


def _header(data) -> tuple[int, int, int, int, int, int] | None:
    """(phoff, shoff, phentsize, phnum, shentsize, shnum) of a 64-bit little-endian ELF
    file, or None for anything else (32-bit, big-endian, not ELF)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    phoff, shoff = struct.unpack_from("<QQ", data, 32)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 54)
    return phoff, shoff, phentsize, phnum, shentsize, shnum


def loadable(data) -> bool:
    """True when every PT_LOAD segment of the ELF image has offset == vaddr modulo its
    alignment, the condition ld.so checks before mapping it."""
    head = _header(data)
    if head is None:
        return False
    phoff, _, phentsize, phnum, _, _ = head
    if phoff + phentsize * phnum > len(data):
        return False
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, _, _, p_align = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == PT_LOAD and p_align > 1 and (p_offset - p_vaddr) % p_align:
            return False
    return True


def has_symtab(data) -> bool:
    """True when the ELF image still has a static symbol table (`file` says "not stripped")."""
    head = _header(data)
    if head is None:
        return False
    _, shoff, _, _, shentsize, shnum = head
    if shoff == 0 or shoff + shentsize * shnum > len(data):
        return False
    return any(struct.unpack_from("<I", data, shoff + i * shentsize + 4)[0] == SHT_SYMTAB for i in range(shnum))


@contextlib.contextmanager
def _mapped(path: Path):
    """The file's bytes, mapped rather than read (TensorFlow's library is 0.5-0.8 GB)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            yield m


def _check(path: Path, test) -> bool:
    with _mapped(path) as data:
        return test(data)


def strip_one(path: Path, tmp_dir: Path) -> tuple[int, bool]:
    """Strip ``path`` in place when the stripped copy is loadable. Returns (bytes saved,
    whether it was replaced); (0, False) for files that need nothing."""
    if not _check(path, has_symtab):
        return 0, False
    out = tmp_dir / "stripped"
    run = subprocess.run(["strip", "--strip-unneeded", "-o", str(out), str(path)], capture_output=True)
    if run.returncode != 0 or not _check(out, loadable):
        return 0, False
    saved = path.stat().st_size - out.stat().st_size
    shutil.copymode(path, out)
    os.replace(out, path)
    return saved, True


def libraries(roots: list[Path]) -> list[Path]:
    """Regular files named like shared libraries (*.so, *.so.N...) under ``roots``; a
    root may itself be such a file. Symlinks are skipped: their targets are listed."""
    found = []
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        found += [p for p in paths if ".so" in p.name and p.is_file() and not p.is_symlink()]
    return found


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    saved, kept = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for lib in libraries([Path(a) for a in argv]):
            n, replaced = strip_one(lib, Path(tmp))
            saved += n
            if not replaced and _check(lib, has_symtab):
                kept.append(lib.name)
    print(f"strip: {saved / 2**20:.0f} MB of symbol tables and debug info removed"
          + (f"; left unstripped (the stripped copy would not load): {', '.join(kept)}" if kept else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
