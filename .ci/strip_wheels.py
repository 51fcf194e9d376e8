#!/usr/bin/env python3
"""Strip DWARF debug sections from the shared libraries inside built wheels.

Used by the Docker builder stage right after ``pip wheel`` (and by
tests/test_image.py, which checks the built image). Some wheels on PyPI ship
unstripped extension modules: ctranslate2's ``_ext.cpython-*.so`` alone carries
~66 MB of ``.debug_*`` sections for ~1.7 MB of code. Stripping them in the
builder keeps them out of the runtime image without a compiler or binutils in
the runtime stage.

Only ``strip --strip-debug`` is used: the dynamic symbol table, the regular
symbol table and everything the loader needs stay untouched, so the result
behaves exactly like the original. Members without debug sections are left
byte-for-byte as they were, and a wheel with nothing to strip is not rewritten.
The wheel's RECORD is updated with the new sha256 and size of every rewritten
member, so the wheel stays valid.

Usage: strip_wheels.py WHEEL_DIR [--strip PROGRAM]
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ELF_MAGIC = b"\x7fELF"


def elf_section_names(data: bytes) -> list[str]:
    """Return the section names of an ELF image (32/64-bit, either endianness).

    Returns [] for anything that is not a well-formed ELF file.
    """
    if len(data) < 0x34 or not data.startswith(ELF_MAGIC):
        return []
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    try:
        if is64:
            (shoff,) = struct.unpack_from(endian + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
            name_fmt, off_fmt, off_pos, size_pos = "I", "Q", 0x18, 0x20
        else:
            (shoff,) = struct.unpack_from(endian + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
            name_fmt, off_fmt, off_pos, size_pos = "I", "I", 0x10, 0x14
        if shoff == 0 or shnum == 0 or shstrndx >= shnum:
            return []

        def header(i: int) -> tuple[int, int, int]:
            base = shoff + i * shentsize
            (name,) = struct.unpack_from(endian + name_fmt, data, base)
            (offset,) = struct.unpack_from(endian + off_fmt, data, base + off_pos)
            (size,) = struct.unpack_from(endian + off_fmt, data, base + size_pos)
            return name, offset, size

        _, str_off, str_size = header(shstrndx)
        strtab = data[str_off : str_off + str_size]
        names = []
        for i in range(shnum):
            name_off = header(i)[0]
            end = strtab.find(b"\0", name_off)
            names.append(strtab[name_off:end].decode("ascii", "replace"))
        return names
    except struct.error:
        return []


def has_debug_sections(data: bytes) -> bool:
    return any(name.startswith((".debug_", ".zdebug_")) for name in elf_section_names(data))


def _is_shared_object(member: str) -> bool:
    base = member.rsplit("/", 1)[-1]
    return base.endswith(".so") or ".so." in base


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _strip_bytes(data: bytes, strip: str, workdir: str) -> bytes:
    path = os.path.join(workdir, "member.so")
    with open(path, "wb") as fh:
        fh.write(data)
    subprocess.run([strip, "--strip-debug", path], check=True)
    with open(path, "rb") as fh:
        return fh.read()


def strip_wheel(wheel: Path, strip: str) -> int:
    """Strip one wheel in place; return the number of bytes saved (0: untouched)."""
    replaced: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as zin, tempfile.TemporaryDirectory() as work:
        infos = zin.infolist()
        for info in infos:
            if info.is_dir() or not _is_shared_object(info.filename):
                continue
            data = zin.read(info)
            if not has_debug_sections(data):
                continue
            stripped = _strip_bytes(data, strip, work)
            if len(stripped) < len(data):
                replaced[info.filename] = stripped
        if not replaced:
            return 0

        records = [i.filename for i in infos if i.filename.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            raise SystemExit(f"{wheel.name}: expected one .dist-info/RECORD, found {records}")
        rows = list(csv.reader(io.StringIO(zin.read(records[0]).decode("utf-8"))))
        for row in rows:
            if row and row[0] in replaced:
                new = replaced[row[0]]
                row[1:3] = [_record_hash(new), str(len(new))]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        replaced[records[0]] = out.getvalue().encode("utf-8")

        tmp = wheel.with_name(wheel.name + ".tmp")
        with zipfile.ZipFile(tmp, "w") as zout:
            for info in infos:
                data = replaced.get(info.filename)
                if data is None:
                    data = zin.read(info)
                # Re-using the ZipInfo keeps order, timestamps, permissions and
                # the compression method of every member.
                zout.writestr(info, data, compress_type=info.compress_type)
    saved = wheel.stat().st_size - tmp.stat().st_size
    os.replace(tmp, wheel)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel_dir", type=Path)
    parser.add_argument("--strip", default="strip", help="strip program (binutils)")
    args = parser.parse_args(argv)

    strip = shutil.which(args.strip)
    if strip is None:
        print(f"strip_wheels: '{args.strip}' not found (install binutils)", file=sys.stderr)
        return 2
    wheels = sorted(args.wheel_dir.glob("*.whl"))
    if not wheels:
        print(f"strip_wheels: no wheels in {args.wheel_dir}", file=sys.stderr)
        return 2
    total = 0
    for wheel in wheels:
        saved = strip_wheel(wheel, strip)
        if saved:
            print(f"strip_wheels: {wheel.name}: -{saved / 1e6:.1f} MB (compressed)")
        total += saved
    print(f"strip_wheels: {len(wheels)} wheels checked, {total / 1e6:.1f} MB saved (compressed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
