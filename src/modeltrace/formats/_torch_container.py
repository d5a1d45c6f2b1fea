"""The two file layouts of ``torch.save``: where the pickle is and where each storage's bytes lie.

Zip (torch >= 1.6): ``<folder>/data.pkl`` holds the structure, ``<folder>/data/<key>`` the raw
bytes of storage ``key``, stored uncompressed so they can be read by byte range in place;
``<folder>/byteorder`` says ``little`` (absent in old files, which are little-endian).

Legacy (``_use_new_zipfile_serialization=False``): five pickles back to back (magic number,
protocol version 1001, system info, the structure, the sorted list of storage keys), then for
each key an 8-byte little-endian element count followed by the storage's bytes.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from modeltrace.errors import CorruptFileError, FormatError, ResourceLimitError, UnsupportedFormatError
from modeltrace.formats import limits
from modeltrace.formats._polyglot import legacy_polyglot_warnings, zip_polyglot_warnings
from modeltrace.formats._torch_pickle import (
    PickleStream,
    RestrictedUnpickler,
    StorageRef,
    describe,
    load_pickle,
    scan_pickle,
)
from modeltrace.formats.base import RangeFile

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then name and extra-field lengths


@dataclass
class Checkpoint:
    """One checkpoint file, parsed but no tensor data read."""

    root: Any  # the unpickled structure: dicts, lists, scalars and TensorRef leaves
    storages: dict[str, StorageRef]
    #: Absolute file offset of each storage's first byte, and the bytes it holds.
    locations: dict[str, tuple[int, int]]
    metadata: dict[str, str] = field(default_factory=dict)
    #: Opcodes of the structure's pickle: a tree walk of ``root`` may visit at most this many
    #: nodes. More means shared sub-lists referenced over and over (a DAG that expands
    #: exponentially when walked as a tree), which no checkpoint writer produces.
    opcodes: int = 0
    #: Parts of the file this reader did not load but another loader might (see ``polyglot``).
    warnings: list[str] = field(default_factory=list)


def read_checkpoint(handle: RangeFile) -> Checkpoint:
    """Parse either layout; every inconsistency is a FormatError naming the file."""
    head = handle.read(0, min(4, handle.size))
    if head == b"PK\x03\x04":
        return _read_zip(handle)
    if head[:1] == b"\x80":
        return _read_legacy(handle)
    raise UnsupportedFormatError(
        handle.path, f"starts with {head!r}: neither a zip nor a legacy torch.save checkpoint"
    )


# -- zip -------------------------------------------------------------------------------------------


class _RangeReader(io.RawIOBase):
    """A seekable file object over a RangeFile, so zipfile's reads are bounded and counted too."""

    def __init__(self, handle: RangeFile) -> None:
        self._handle = handle
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._handle.size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the file")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        length = max(0, min(len(buffer), self._handle.size - self._position))
        data = self._handle.read(self._position, length)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def _open_zip(handle: RangeFile) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(_RangeReader(handle))  # type: ignore[arg-type]
    except FormatError:
        raise
    except Exception as error:  # BadZipFile, struct.error, OSError, ValueError ... on hostile bytes
        raise CorruptFileError(handle.path, f"not a valid zip archive ({error})") from error
    if len(archive.infolist()) > limits.MAX_ZIP_ENTRIES:
        raise ResourceLimitError(handle.path, f"zip archive lists {len(archive.infolist()):,} entries")
    total = sum(info.file_size for info in archive.infolist())
    if total > limits.MAX_ZIP_UNCOMPRESSED_BYTES:
        raise ResourceLimitError(handle.path, f"zip members claim {total:,} bytes uncompressed")
    return archive


def _member_data_offset(handle: RangeFile, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start: after its local header, whose lengths may differ from
    the central directory's, so they are read from the local header itself."""
    header = handle.read(info.header_offset, _ZIP_LOCAL_HEADER.size)
    signature, name_length, extra_length = _ZIP_LOCAL_HEADER.unpack(header)
    if signature != b"PK\x03\x04":
        raise CorruptFileError(handle.path, f"zip member '{info.filename}' has no local header")
    name = handle.read(info.header_offset + _ZIP_LOCAL_HEADER.size, name_length)
    if name.decode("utf-8", "replace") != info.filename and name.decode("cp437") != info.filename:
        raise CorruptFileError(handle.path, f"zip member '{info.filename}' local name differs ({name!r:.60})")
    start = info.header_offset + _ZIP_LOCAL_HEADER.size + name_length + extra_length
    if start + info.file_size > handle.size:
        raise CorruptFileError(handle.path, f"zip member '{info.filename}' runs past the end of the file")
    return start


def _read_member(handle: RangeFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A small member (data.pkl, byteorder) in memory; compressed ones only within the limits."""
    if info.file_size > limit:
        raise ResourceLimitError(
            handle.path, f"zip member '{info.filename}' is {info.file_size:,} bytes, over the {limit:,} limit"
        )
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != info.file_size:
            raise CorruptFileError(handle.path, f"stored zip member '{info.filename}' has two sizes")
        return handle.read(_member_data_offset(handle, info), info.file_size)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        # torch.load's reader (miniz) knows stored and deflate only; Python's zipfile would also
        # unpack bz2/lzma, in one unbounded call per read (3 GiB from a 2 KB bz2 stream).
        raise UnsupportedFormatError(
            handle.path,
            f"zip member '{info.filename}' uses compression method {info.compress_type}; "
            "torch.save checkpoints are stored or deflated",
        )
    if info.file_size > max(info.compress_size, 1) * limits.MAX_ZIP_COMPRESSION_RATIO:
        raise ResourceLimitError(
            handle.path,
            f"zip member '{info.filename}' expands {info.compress_size:,} -> {info.file_size:,} bytes "
            f"(ratio over {limits.MAX_ZIP_COMPRESSION_RATIO}): refusing a possible zip bomb",
        )
    return _inflate(handle, info)


def _inflate(handle: RangeFile, info: zipfile.ZipInfo) -> bytes:
    """A deflated member, streamed: never more output than the member declares (already checked
    against the caller's limit), whatever the compressed stream holds."""
    start = _member_data_offset(handle, info)
    if start + info.compress_size > handle.size:
        raise CorruptFileError(handle.path, f"zip member '{info.filename}' runs past the end of the file")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    output = bytearray()
    position, end = start, start + info.compress_size
    try:
        while position < end or inflater.unconsumed_tail:
            if inflater.unconsumed_tail:
                chunk = inflater.unconsumed_tail
            else:
                chunk = handle.read(position, min(1 << 20, end - position))
                position += len(chunk)
            output += inflater.decompress(chunk, info.file_size + 1 - len(output))
            if len(output) > info.file_size:
                raise ResourceLimitError(
                    handle.path,
                    f"zip member '{info.filename}' unpacks past its declared {info.file_size:,} bytes",
                )
            if inflater.eof:
                break
    except zlib.error as error:
        raise CorruptFileError(handle.path, f"cannot decompress '{info.filename}' ({error})") from error
    if len(output) != info.file_size or zlib.crc32(output) != info.CRC:
        raise CorruptFileError(
            handle.path, f"zip member '{info.filename}' unpacks to other bytes than its header declares"
        )
    return bytes(output)


def _read_zip(handle: RangeFile) -> Checkpoint:
    archive = _open_zip(handle)
    members = {info.filename: info for info in archive.infolist()}
    pickles = [name for name in members if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise UnsupportedFormatError(
            handle.path,
            "zip archive without exactly one '<folder>/data.pkl': not a torch.save checkpoint "
            f"(found {len(pickles)})",
        )
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = members.get(prefix + "byteorder")
    if byteorder is not None and _read_member(handle, byteorder, 16) != b"little":
        raise UnsupportedFormatError(
            handle.path, "checkpoint was saved big-endian; only little-endian is read"
        )
    data = _read_member(handle, members[pickles[0]], limits.MAX_PICKLE_BYTES)
    root, unpickler = load_pickle(data, handle.path, "data.pkl")
    locations: dict[str, tuple[int, int]] = {}
    for key, storage in unpickler.storages.items():
        info = members.get(f"{prefix}data/{key}")
        if info is None:
            raise CorruptFileError(handle.path, f"storage '{key}' has no member '{prefix}data/{key}'")
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise UnsupportedFormatError(
                handle.path, f"storage member '{info.filename}' is compressed; torch.save stores them raw"
            )
        needed = storage.numel * storage.itemsize
        if info.file_size < needed:
            raise CorruptFileError(
                handle.path, f"storage '{key}' needs {needed:,} bytes but its member holds {info.file_size:,}"
            )
        locations[key] = (_member_data_offset(handle, info), needed)
    used = {pickles[0], prefix + "byteorder", *(f"{prefix}data/{key}" for key in locations)}
    warnings = zip_polyglot_warnings(handle, archive, prefix, used)
    return Checkpoint(
        root, unpickler.storages, locations, {"serialization": "zip"}, unpickler.opcodes, warnings
    )


# -- legacy ----------------------------------------------------------------------------------------


def _next_pickle(stream: PickleStream, handle: RangeFile, what: str) -> tuple[Any, RestrictedUnpickler]:
    """Unpickle the next pickle of the stream; returns it and its unpickler (storages, opcodes)."""
    scan_pickle(stream, handle.path, what)
    return load_pickle(stream.take(), handle.path, what)


def _read_legacy(handle: RangeFile) -> Checkpoint:
    # The five pickles together stay within the pickle limit (the first three are a few bytes).
    stream = PickleStream(handle.read, 0, min(handle.size, limits.MAX_PICKLE_BYTES))
    magic, _ = _next_pickle(stream, handle, "magic number")
    if isinstance(magic, bool) or magic != LEGACY_MAGIC:
        raise UnsupportedFormatError(
            handle.path, f"a pickle whose first value is {describe(magic)}, not a torch.save checkpoint"
        )
    protocol, _ = _next_pickle(stream, handle, "protocol version")
    if protocol != LEGACY_PROTOCOL:
        raise UnsupportedFormatError(
            handle.path, f"legacy protocol version {describe(protocol)} (expected 1001)"
        )
    sys_info, _ = _next_pickle(stream, handle, "system info")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise UnsupportedFormatError(handle.path, "legacy checkpoint is not marked little-endian")
    root, main = _next_pickle(stream, handle, "checkpoint pickle")
    storages = main.storages
    keys, _ = _next_pickle(stream, handle, "storage key list")
    position = stream.offset
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise CorruptFileError(handle.path, "legacy storage key list is not a list of strings")
    if len(keys) > limits.MAX_TENSORS:
        raise ResourceLimitError(handle.path, f"legacy checkpoint lists {len(keys):,} storages")
    locations: dict[str, tuple[int, int]] = {}
    for key in keys:
        storage = storages.get(key)
        if storage is None or key in locations:
            raise CorruptFileError(
                handle.path, f"storage key '{key:.40}' is not used by the pickle or repeats"
            )
        (count,) = struct.unpack("<q", handle.read(position, 8))
        if count != storage.numel:
            raise CorruptFileError(
                handle.path,
                f"storage '{key:.40}' holds {count:,} elements but the pickle says {storage.numel:,}",
            )
        length = count * storage.itemsize
        if position + 8 + length > handle.size:
            raise CorruptFileError(
                handle.path,
                f"storage '{key:.40}' claims {length:,} bytes at {position + 8:,}, past the end of the file "
                f"({handle.size:,} bytes); the file is truncated",
            )
        locations[key] = (position + 8, length)
        position += 8 + length
    missing = set(storages) - set(locations)
    if missing:
        raise CorruptFileError(handle.path, f"storage '{sorted(missing)[0]:.40}' has no data in the file")
    warnings = legacy_polyglot_warnings(handle, position)
    return Checkpoint(root, storages, locations, {"serialization": "legacy"}, main.opcodes, warnings)
