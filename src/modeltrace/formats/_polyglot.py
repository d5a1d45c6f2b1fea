"""Checkpoints that are two files at once: what modeltrace reads is not what every loader reads.

``torch.load`` picks the layout from the first four bytes: ``PK\\x03\\x04`` means zip, anything
else is unpickled as a legacy checkpoint. Zip readers find an archive from its *end* record. So
bytes can be arranged for two readers to see two different files: a legacy pickle with a zip
appended (zip tools and scanners see the archive, ``torch.load`` runs the pickle), a zip
checkpoint followed by a pickle, or a checkpoint carrying another pickle or archive as an extra
member that some loader opens. modeltrace reads one part through its allow-list and never
executes anything; these checks say when the file holds a part it did not vet, because loading
that file with another tool could run code. Each finding is one sentence; the reader reports them
as warnings and ``unsafe_pickle: true`` (see docs/formats.md).
"""

from __future__ import annotations

import zipfile

from modeltrace.formats.base import RangeFile

_ZIP_END = b"PK\x05\x06"
_ZIP_LOCAL = b"PK\x03\x04"
#: Where a zip end record may start before the end of the file (22 bytes + a comment of <64 KiB).
_END_SEARCH = 22 + 0xFFFF
#: Members torch.save writes besides data.pkl, byteorder and the storages.
_TORCH_MEMBERS = (
    "version",
    ".data/version",
    ".data/serialization_id",
    ".format_version",
    ".storage_alignment",
)


def _looks_loadable(head: bytes) -> str | None:
    """What a loader would make of bytes starting with ``head``: a pickle, a zip, or nothing."""
    if head.startswith(_ZIP_LOCAL):
        return "a zip archive"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO 2..5: what torch.save writes
        return "a pickle"
    return None


def legacy_polyglot_warnings(handle: RangeFile, end_of_checkpoint: int) -> list[str]:
    """Findings for a legacy checkpoint whose last storage ends at ``end_of_checkpoint``."""
    warnings: list[str] = []
    trailing = handle.size - end_of_checkpoint
    if trailing <= 0:
        return warnings
    tail_start = max(end_of_checkpoint, handle.size - _END_SEARCH)
    tail = handle.read(tail_start, handle.size - tail_start)
    head = handle.read(end_of_checkpoint, min(16, trailing))
    if _ZIP_END in tail:
        warnings.append(
            f"{trailing:,} bytes after the legacy checkpoint end in a zip archive: zip readers see "
            "another file than torch.load, which runs the legacy pickle"
        )
    elif (kind := _looks_loadable(head)) is not None:
        warnings.append(f"{trailing:,} bytes after the legacy checkpoint hold {kind} that was not read")
    return warnings


def zip_polyglot_warnings(
    handle: RangeFile, archive: zipfile.ZipFile, prefix: str, used: set[str]
) -> list[str]:
    """Findings for a zip checkpoint in folder ``prefix`` (``archive/``) whose members ``used`` were read."""
    warnings: list[str] = []
    end = handle.size
    tail_start = max(0, handle.size - _END_SEARCH)
    found = handle.read(tail_start, handle.size - tail_start).rfind(_ZIP_END)
    if found >= 0:
        record = tail_start + found
        comment_length = (
            int.from_bytes(handle.read(record + 20, 2), "little") if record + 22 <= handle.size else 0
        )
        end = record + 22 + comment_length
    if end < handle.size:
        head = handle.read(end, min(16, handle.size - end))
        kind = _looks_loadable(head) or "data"
        warnings.append(f"{handle.size - end:,} bytes after the zip archive hold {kind} that was not read")
    for info in archive.infolist():
        name = info.filename
        if name in used or name.endswith("/") or name.removeprefix(prefix) in _TORCH_MEMBERS:
            continue
        if name.startswith(prefix + "data/"):
            continue  # a storage no tensor uses: raw numbers, not loaded as code
        head = _member_head(handle, info)
        kind = _looks_loadable(head) if head is not None else "compressed data"
        if kind is not None:
            warnings.append(f"zip member '{name[:120]}' holds {kind} that was not read")
    return warnings


def _member_head(handle: RangeFile, info: zipfile.ZipInfo) -> bytes | None:
    """The first bytes of a stored member (None for a compressed one)."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    header = handle.read(info.header_offset, 30) if info.header_offset + 30 <= handle.size else b""
    if len(header) < 30:
        return b""
    start = (
        info.header_offset
        + 30
        + int.from_bytes(header[26:28], "little")
        + int.from_bytes(header[28:30], "little")
    )
    return handle.read(start, min(16, info.file_size, max(handle.size - start, 0)))
