"""Hostile PyTorch checkpoints, assembled opcode by opcode (no torch needed), for the hostile-file tests.

:class:`Pickle` writes protocol-4 opcodes; :func:`zip_checkpoint` and :func:`legacy_checkpoint`
wrap a structure pickle in the two ``torch.save`` layouts. The builders at the end make the classes
of input issue 19 lists: nesting that crashes the interpreter when hashed, decompression bombs,
name bombs, a text line of tens of MB, and polyglots.
"""

from __future__ import annotations

import bz2
import io
import lzma
import pickle
import struct
import zipfile

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class Pickle:
    """A protocol-4 pickle built opcode by opcode."""

    def __init__(self) -> None:
        self.data = bytearray(b"\x80\x04")
        self.memo = 0

    def raw(self, opcodes: bytes) -> Pickle:
        self.data += opcodes
        return self

    def text(self, value: str) -> Pickle:
        encoded = value.encode("utf-8")
        return self.raw(b"X" + struct.pack("<I", len(encoded)) + encoded)

    def integer(self, value: int) -> Pickle:
        if 0 <= value < 2**31:
            return self.raw(b"J" + struct.pack("<i", value))
        encoded = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return self.raw(b"\x8a" + bytes([len(encoded)]) + encoded)

    def global_(self, module: str, name: str) -> Pickle:
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def put(self) -> int:
        """Memoize the top of the stack; returns its memo index."""
        self.raw(b"\x94")  # MEMOIZE
        self.memo += 1
        return self.memo - 1

    def get(self, index: int) -> Pickle:
        return self.raw(b"j" + struct.pack("<I", index))

    def ints(self, values: tuple[int, ...]) -> Pickle:
        self.raw(b"(")
        for value in values:
            self.integer(value)
        return self.raw(b"t")

    def tensor(self, key: str, numel: int, shape: tuple[int, ...], legacy: bool = False) -> Pickle:
        """``torch._utils._rebuild_tensor_v2`` of a float32 storage ``key`` (contiguous strides)."""
        strides = []
        step = 1
        for size in reversed(shape):
            strides.append(step)
            step *= max(size, 1)
        self.global_("torch._utils", "_rebuild_tensor_v2").raw(b"(")
        self.raw(b"(").text("storage").global_("torch", "FloatStorage").text(key).text("cpu")
        self.integer(numel)
        if legacy:
            self.raw(b"N")
        self.raw(b"tQ")  # TUPLE, BINPERSID
        self.integer(0).ints(shape).ints(tuple(reversed(strides))).raw(b"\x89")  # NEWFALSE
        self.global_("collections", "OrderedDict").raw(b")R")
        return self.raw(b"tR")

    def stop(self) -> bytes:
        return bytes(self.data + b".")


def zip_checkpoint(
    data_pkl: bytes,
    storages: dict[str, bytes] | None = None,
    *,
    pickle_compression: int = zipfile.ZIP_STORED,
    extra: dict[str, bytes] | None = None,
    byteorder: bytes = b"little",
) -> bytes:
    """A torch.save zip archive holding ``data_pkl`` (compressed as asked) and raw storages."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl, compress_type=pickle_compression)
        archive.writestr("archive/byteorder", byteorder)
        for key, payload in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", payload)
        for name, payload in (extra or {}).items():
            archive.writestr(name, payload)
        archive.writestr("archive/version", b"3\n")
    return buffer.getvalue()


def legacy_checkpoint(root_pickle: bytes, storages: dict[str, bytes] | None = None) -> bytes:
    """A ``_use_new_zipfile_serialization=False`` file: five pickles, then each storage's bytes."""
    storages = storages or {}
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4, "long": 4}}
    parts = [pickle.dumps(LEGACY_MAGIC, 2), pickle.dumps(1001, 2), pickle.dumps(sys_info, 2), root_pickle]
    parts.append(pickle.dumps(list(storages), 2))
    for payload in storages.values():
        parts.append(struct.pack("<q", len(payload) // 4) + payload)
    return b"".join(parts)


def _one_tensor(legacy: bool = False) -> tuple[bytes, dict[str, bytes]]:
    root = Pickle().raw(b"}").text("weight").tensor("0", 4, (2, 2), legacy).raw(b"s").stop()
    return root, {"0": struct.pack("<4f", 1, 2, 3, 4)}


def benign_zip_pickle() -> bytes:
    return _one_tensor()[0]


def benign_zip() -> bytes:
    root, storages = _one_tensor()
    return zip_checkpoint(root, storages)


def benign_legacy() -> bytes:
    root, storages = _one_tensor(legacy=True)
    return legacy_checkpoint(root, storages)


# -- nesting: hashing a deep tuple recurses in C and overflows the C stack --------------------------


def deep_pickle(kind: str, depth: int = 400_000) -> bytes:
    """A dict whose key (``key``), set element (``set``) or frozenset element (``frozenset``) is a
    tuple nested ``depth`` levels deep: only TUPLE1 opcodes, so no MARK betrays the depth."""
    deep = b")" + b"\x85" * depth
    code = Pickle().raw(b"}").text("weight")
    if kind == "key":
        code.raw(b"}" + deep).integer(1).raw(b"s")
    elif kind == "set":
        code.raw(b"\x8f(" + deep + b"\x90")  # EMPTY_SET, MARK, ..., ADDITEMS
    elif kind == "frozenset":
        code.raw(b"(" + deep + b"\x91")  # MARK, ..., FROZENSET
    else:
        raise ValueError(kind)
    return code.raw(b"s").stop()


# -- name bombs -------------------------------------------------------------------------------------


def name_bomb(key_bytes: int = 1 << 20, tensors: int = 50_000, legacy: bool = False) -> tuple[bytes, dict]:
    """``{K: {"0": t, "1": t, ...}}`` with one huge key K and one tensor referenced many times:
    a few MB of pickle that flattens to ``tensors`` names of ``key_bytes`` each."""
    code = Pickle().raw(b"}").text("k" * key_bytes).raw(b"}(")
    code.text("0").tensor("0", 4, (2, 2), legacy)
    tensor = code.put()
    for index in range(1, tensors):
        code.text(str(index)).get(tensor)
    root = code.raw(b"us").stop()  # SETITEMS, SETITEM
    return root, {"0": struct.pack("<4f", 1, 2, 3, 4)}


def text_line_pickle(line_bytes: int = 24 << 20) -> bytes:
    """A legacy root pickle holding one protocol-0 STRING opcode whose line is ``line_bytes`` long."""
    return b"(dp0\nS'" + b"a" * line_bytes + b"'\np1\nI1\ns."


# -- decompression bombs ---------------------------------------------------------------------------


_BZ2_BLOCK_MAGIC = 0x314159265359
_BZ2_END_MAGIC = 0x177245385090


def bz2_zero_bomb(blocks: int) -> bytes:
    """A valid bz2 stream of ``blocks`` x 46 MB of zeros, about 30 bytes a block.

    Compressing 3 GiB takes seconds, so one block of a real stream is cut out at the bit level
    (blocks are bit-aligned) and repeated; the end record carries the combined CRC."""
    bits = bin(int.from_bytes(bz2.compress(bytes(92_000_000), 9), "big"))[2:]
    bits = bits.zfill(-(-len(bits) // 8) * 8)
    magic = format(_BZ2_BLOCK_MAGIC, "048b")
    first = bits.index(magic, 32)
    block = bits[first : bits.index(magic, first + 48)]
    block_crc = int(block[48:80], 2)
    combined = 0
    for _ in range(blocks):
        combined = (((combined << 1) | (combined >> 31)) & 0xFFFFFFFF) ^ block_crc
    stream = bits[:32] + block * blocks + format(_BZ2_END_MAGIC, "048b") + format(combined, "032b")
    stream += "0" * (-len(stream) % 8)
    return int(stream, 2).to_bytes(len(stream) // 8, "big")


def relabel_member(archive_bytes: bytes, name: str, method: int, declared_size: int) -> bytes:
    """Mark stored member ``name`` as compressed with ``method`` and declare its unpacked size, in
    both its local header and the central directory (zipfile cannot write pre-compressed data)."""
    data = bytearray(archive_bytes)
    encoded = name.encode()
    for signature, method_at, size_at, name_at in ((b"PK\x03\x04", 8, 22, 30), (b"PK\x01\x02", 10, 24, 46)):
        position = data.find(signature)
        while position >= 0:
            length = struct.unpack_from("<H", data, position + name_at - (4 if name_at == 30 else 18))[0]
            if data[position + name_at : position + name_at + length] == encoded:
                struct.pack_into("<H", data, position + method_at, method)
                struct.pack_into("<I", data, position + size_at, declared_size)
            position = data.find(signature, position + 4)
    return bytes(data)


def compressed_pickle_bomb(method: int, *, declared_size: int = 1000, member: str = "data.pkl") -> bytes:
    """A zip checkpoint whose data.pkl unpacks to 3 GiB (bz2, from 2 KB) or 64 MB (lzma: compressing
    more takes too long in a test) of zeros, declaring ``declared_size`` bytes: the lie passes any
    ratio check done on declared sizes."""
    if method == zipfile.ZIP_BZIP2:
        packed = bz2_zero_bomb(70)
    else:
        compressor = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA1}])
        properties = lzma._encode_filter_properties({"id": lzma.FILTER_LZMA1})  # as zipfile writes
        body = compressor.compress(bytes(64 << 20)) + compressor.flush()
        packed = struct.pack("<BBH", 9, 4, len(properties)) + properties + body
    if member == "byteorder":  # the byte-order member is read first, with a 16-byte limit
        archive = zip_checkpoint(benign_zip_pickle(), byteorder=packed)
        return relabel_member(archive, "archive/byteorder", method, min(declared_size, 6))
    archive = zip_checkpoint(packed)
    return relabel_member(archive, "archive/data.pkl", method, declared_size)


# -- polyglots -------------------------------------------------------------------------------------


def polyglot(order: str) -> bytes:
    """A file that is a torch zip checkpoint and a legacy pickle at once.

    ``legacy-first``: a legacy checkpoint with a zip checkpoint appended (zip readers find the
    archive by its end record). ``zip-first``: a zip checkpoint followed by a pickle (``pickle.load``
    after seeking, or a loader that scans for the pickle, finds it). ``nested``: a zip checkpoint
    with a second checkpoint stored as an extra member."""
    if order == "legacy-first":
        return benign_legacy() + benign_zip()
    if order == "zip-first":
        return benign_zip() + benign_legacy()
    if order == "nested":
        root, storages = _one_tensor()
        return zip_checkpoint(root, storages, extra={"archive/extra/payload.pt": benign_legacy()})
    raise ValueError(order)
