"""packaging/strip_bundle.py: a stripped library replaces the original only when ld.so
could still map it (strip breaks patchelf-edited OpenBLAS builds)."""

from __future__ import annotations

import importlib.util
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("strip_bundle", ROOT / "packaging" / "strip_bundle.py")
strip_bundle = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(strip_bundle)


def _elf(loads: list[tuple[int, int, int]]) -> bytes:
    """A 64-bit little-endian ELF header and PT_LOAD program headers (offset, vaddr, align)."""
    phoff, phentsize = 64, 56
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<QQ", head, 32, phoff, 0)
    struct.pack_into("<HHHH", head, 54, phentsize, len(loads), 64, 0)
    phs = b"".join(struct.pack("<IIQQQQQQ", 1, 5, off, va, va, 0x100, 0x100, align) for off, va, align in loads)
    return bytes(head) + phs


def test_loadable_requires_offset_congruent_to_address():
    assert strip_bundle.loadable(_elf([(0, 0, 0x1000), (0x2000, 0x5000, 0x1000)]))
    # the layout ld.so rejects: "ELF load command address/offset not page-aligned"
    assert not strip_bundle.loadable(_elf([(0, 0, 0x1000), (0x2010, 0x5000, 0x1000)]))
    assert not strip_bundle.loadable(b"not an elf file at all" * 4)


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("strip") is None, reason="needs cc and strip")
def test_strips_a_real_library_and_skips_a_stripped_one(tmp_path):
    src = tmp_path / "f.c"
    src.write_text("int f(int x) { return x + 1; }\n")
    lib = tmp_path / "libf.so.1"
    subprocess.run(["cc", "-g", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    before = lib.stat().st_size
    assert strip_bundle.main([str(tmp_path)]) == 0
    assert lib.stat().st_size < before
    with open(lib, "rb") as f:
        data = f.read()
    assert not strip_bundle.has_symtab(data) and strip_bundle.loadable(data)
    assert strip_bundle.strip_one(lib, tmp_path) == (0, False)  # nothing left to strip
