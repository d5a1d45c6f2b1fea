"""Load PyTorch's pickles without executing any code from them, and without torch.

A checkpoint's pickle describes tensors as calls such as
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``. Unpickling normally imports
and calls whatever globals the stream names, which is how a hostile ``.bin`` runs ``os.system``.
Here :class:`RestrictedUnpickler` answers every global lookup from a fixed allow-list of inert
stand-ins: the rebuild functions return :class:`TensorRef` descriptions, storage types and dtypes
are plain markers, ``OrderedDict`` is ``dict``. Any other global raises :class:`UnsafePickleError`
before anything is called.

Before unpickling, :func:`scan_pickle` walks the opcodes with :mod:`pickletools` (which only
parses) to bound what the C unpickler would allocate: stream size, opcode count (which bounds the
stack and memo), memo indices (a ``LONG_BINPUT 4e9`` would make it allocate a 32 GB memo table)
and MARK nesting.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeltrace.errors import (
    CorruptFileError,
    FormatError,
    ResourceLimitError,
    UnsafePickleError,
    UnsupportedFormatError,
)
from modeltrace.formats import limits
from modeltrace.formats._pickle_depth import NestingTracker
from modeltrace.formats.base import DENSE_ITEMSIZE

#: torch dtype names (as pickled: ``torch.float32`` pickles as the global ``torch float32``) that
#: map to a dense dtype modeltrace reads, in safetensors spelling.
TORCH_DTYPES: dict[str, str] = {
    "float64": "F64", "double": "F64", "float32": "F32", "float": "F32", "float16": "F16",
    "half": "F16", "bfloat16": "BF16", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
    "int64": "I64", "long": "I64", "int32": "I32", "int": "I32", "int16": "I16", "short": "I16",
    "int8": "I8", "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL",
}  # fmt: skip
#: torch dtypes that exist but that modeltrace cannot decode: named in a clear error, not "unsafe".
UNSUPPORTED_TORCH_DTYPES = frozenset(
    (
        "complex32", "complex64", "complex128", "cfloat", "cdouble", "chalf",
        "qint8", "qint32", "quint8", "quint4x2", "quint2x4",
        "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2",
        "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
        "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
        "int1", "int2", "int3", "int4", "int5", "int6", "int7",
    )
)  # fmt: skip
#: Legacy typed storage classes (``torch.FloatStorage``) and the dtype of their elements.
STORAGE_DTYPES: dict[str, str | None] = {
    "DoubleStorage": "F64", "FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
    "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
    "ByteStorage": "U8", "BoolStorage": "BOOL",
    # Exist in torch but hold values modeltrace does not decode (complex, quantised).
    "ComplexDoubleStorage": None, "ComplexFloatStorage": None, "QInt8Storage": None,
    "QInt32Storage": None, "QUInt8Storage": None, "QUInt4x2Storage": None, "QUInt2x4Storage": None,
}  # fmt: skip
_MAX_INT = 1 << 62
_MEMO_OPCODES = frozenset(("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"))


def describe(value: object) -> str:
    """A short, safe description of an untrusted value for an error message (never a deep repr:
    a hostile pickle can build structures whose repr recurses or runs for minutes)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**18 else "a huge integer"
    if isinstance(value, (str, bytes)):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    return f"a {type(value).__name__}"


class _Inert:
    """Base of every object a pickle can obtain from us: refuses the BUILD opcode, so a hostile
    stream cannot rewrite a shared marker's attributes through ``__setstate__``/``__dict__``."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise pickle.UnpicklingError(f"BUILD applied to {type(self).__name__}")


@dataclass(frozen=True, eq=True)
class StorageRef(_Inert):
    """One storage record: ``key`` names its bytes (zip member ``data/<key>`` or legacy block).

    ``dtype`` is None for ``torch.UntypedStorage`` (numel counts bytes; the tensor names its
    dtype). ``element_offset`` is non-zero only for legacy storage views.
    """

    key: str
    dtype: str | None
    numel: int
    element_offset: int = 0

    @property
    def itemsize(self) -> int:
        return 1 if self.dtype is None else DENSE_ITEMSIZE[self.dtype]


@dataclass(frozen=True)
class TensorRef(_Inert):
    """A tensor as the pickle describes it: a strided view (in elements) of a storage."""

    storage: StorageRef
    dtype: str
    storage_offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class _StorageType(_Inert):
    name: str
    dtype: str | None
    typed: bool


@dataclass(frozen=True)
class _Dtype(_Inert):
    name: str
    dtype: str | None


@dataclass(frozen=True)
class _TensorClass(_Inert):
    name: str


class _OrderedDict(dict):  # type: ignore[type-arg]
    """Stand-in for ``collections.OrderedDict``. ``Module.state_dict()`` attaches a ``_metadata``
    attribute (per-module versions) that pickles as BUILD state; it is accepted and dropped."""

    def __setstate__(self, state: object) -> None:
        pass


class _Function(_Inert):
    """An allow-listed global that may be called by the REDUCE opcode (a pure stand-in)."""

    __slots__ = ("function", "qualified_name")

    def __init__(self, qualified_name: str, function: Callable[..., Any]) -> None:
        self.qualified_name = qualified_name
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


def _markers() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {}
    for name, dtype in STORAGE_DTYPES.items():
        for module in ("torch", "torch.cuda"):
            table[module, name] = _StorageType(name, dtype, typed=True)
    for module in ("torch", "torch.storage"):
        table[module, "UntypedStorage"] = _StorageType("UntypedStorage", None, typed=False)
    for name, dtype in TORCH_DTYPES.items():
        table["torch", name] = _Dtype(name, dtype)
    for name in UNSUPPORTED_TORCH_DTYPES:
        table["torch", name] = _Dtype(name, None)
    table["torch", "Tensor"] = _TensorClass("torch.Tensor")
    table["torch._tensor", "Tensor"] = _TensorClass("torch.Tensor")
    table["torch.nn.parameter", "Parameter"] = _TensorClass("torch.nn.Parameter")
    return table


_MARKERS = _markers()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a checkpoint's structure into dicts, lists, scalars and :class:`TensorRef`."""

    def __init__(self, data: bytes, path: str | Path) -> None:
        super().__init__(io.BytesIO(data))
        self.path = path
        self.storages: dict[str, StorageRef] = {}
        self.tensor_count = 0
        #: Opcodes in the stream (set by ``load_pickle``): also bounds how many references the
        #: unpickled structure holds, since each one was pushed by an opcode.
        self.opcodes = 0
        functions: dict[str, Callable[..., Any]] = {
            "torch._utils._rebuild_tensor": self._rebuild_tensor,
            "torch._utils._rebuild_tensor_v2": self._rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": self._rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": self._rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": self._rebuild_parameter,
            "torch._tensor._rebuild_from_type_v2": self._rebuild_from_type_v2,
        }
        self._functions = {
            tuple(name.rsplit(".", 1)): _Function(name, function) for name, function in functions.items()
        }

    # -- the allow-list --------------------------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._functions:
            return self._functions[key]
        if key == ("collections", "OrderedDict"):
            return _OrderedDict
        if key in _MARKERS:
            return _MARKERS[key]
        qualified = f"{module}.{name}"
        raise UnsafePickleError(self.path, qualified if len(qualified) <= 200 else qualified[:200] + "...")

    def persistent_load(self, pid: Any) -> StorageRef:
        # Zip format: ('storage', type, key, location, numel); legacy adds a view_metadata field.
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
            raise CorruptFileError(
                self.path, f"unknown persistent id {describe(pid)} (expected a storage tuple)"
            )
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise CorruptFileError(self.path, f"storage {describe(key)} has no storage type")
        if storage_type.typed and storage_type.dtype is None:
            raise UnsupportedFormatError(
                self.path, f"storage {describe(key)} is a torch.{storage_type.name} (complex or quantised)"
            )
        if not isinstance(key, str) or not key or len(key) > 256:
            raise CorruptFileError(self.path, f"invalid storage key {describe(key)}")
        storage = StorageRef(key, storage_type.dtype, self._int(numel, "storage size"))
        known = self.storages.setdefault(key, storage)
        if known != storage:
            raise CorruptFileError(self.path, f"storage '{key}' is described twice, differently")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return storage
        # Legacy storage view (torch < 0.4 era): (view_key, element offset, element count).
        if not isinstance(view, tuple) or len(view) != 3:
            raise CorruptFileError(self.path, f"invalid storage view {describe(view)}")
        offset = self._int(view[1], "storage view offset")
        size = self._int(view[2], "storage view size")
        if offset + size > storage.numel:
            raise CorruptFileError(self.path, f"storage view {offset}+{size} exceeds storage '{key}'")
        return StorageRef(key, storage.dtype, size, offset)

    # -- stand-ins for torch._utils ----------------------------------------------------------------

    def _int(self, value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_INT:
            raise CorruptFileError(self.path, f"invalid {what} {describe(value)}")
        return value

    def _ints(self, values: Any, what: str) -> tuple[int, ...]:
        if not isinstance(values, (tuple, list)) or len(values) > limits.MAX_DIMS:
            raise CorruptFileError(self.path, f"invalid {what} {describe(values)}")
        return tuple(self._int(value, what) for value in values)

    def _make_tensor(
        self, storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None = None
    ) -> TensorRef:
        if not isinstance(storage, StorageRef):
            raise CorruptFileError(self.path, f"tensor rebuilt from {type(storage).__name__}, not a storage")
        resolved = dtype or storage.dtype or "U8"
        if storage.dtype is not None and dtype is not None and storage.dtype != dtype:
            raise CorruptFileError(self.path, f"tensor of {dtype} on a {storage.dtype} storage")
        self.tensor_count += 1
        if self.tensor_count > limits.MAX_TENSORS:
            raise ResourceLimitError(self.path, f"pickle rebuilds more than {limits.MAX_TENSORS:,} tensors")
        shape, strides = self._ints(size, "tensor size"), self._ints(stride, "tensor stride")
        if len(shape) != len(strides):
            raise CorruptFileError(self.path, f"tensor size {shape} and stride {strides} differ in rank")
        return TensorRef(storage, resolved, self._int(offset, "storage offset"), shape, strides)

    def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any) -> TensorRef:
        return self._make_tensor(storage, offset, size, stride)

    def _rebuild_tensor_v2(
        self, storage: Any, offset: Any, size: Any, stride: Any, *_grad_hooks_metadata: Any
    ) -> TensorRef:
        return self._make_tensor(storage, offset, size, stride)

    def _rebuild_tensor_v3(
        self, storage: Any, offset: Any, size: Any, stride: Any, _grad: Any, _hooks: Any, dtype: Any,
        *_metadata: Any,
    ) -> TensorRef:  # fmt: skip
        if not isinstance(dtype, _Dtype):
            raise CorruptFileError(self.path, f"tensor dtype {describe(dtype)} is not a torch dtype")
        if dtype.dtype is None:
            raise UnsupportedFormatError(self.path, f"tensor dtype torch.{dtype.name} is not supported")
        return self._make_tensor(storage, offset, size, stride, dtype.dtype)

    def _rebuild_parameter(self, data: Any, *_grad_hooks_state: Any) -> TensorRef:
        if not isinstance(data, TensorRef):
            raise CorruptFileError(self.path, "nn.Parameter wraps something that is not a tensor")
        return data

    def _rebuild_from_type_v2(self, function: Any, new_type: Any, args: Any, _state: Any) -> TensorRef:
        # Tensor subclasses pickle as (rebuild function, class, args); only plain Tensor/Parameter.
        if not isinstance(function, _Function) or not isinstance(new_type, _TensorClass):
            raise CorruptFileError(self.path, "tensor subclass rebuild with unexpected arguments")
        if not isinstance(args, tuple):
            raise CorruptFileError(self.path, "tensor subclass rebuild arguments are not a tuple")
        result = function(*args)
        if not isinstance(result, TensorRef):
            raise CorruptFileError(self.path, "tensor subclass rebuild did not produce a tensor")
        return result


class PickleStream:
    """A bounded, buffered file-like view of file bytes from ``start`` (for pickletools), holding
    pickles back to back: after each scan, :meth:`take` returns exactly the pickle just scanned."""

    _CHUNK = 1 << 16

    def __init__(self, read_at: Callable[[int, int], bytes], start: int, end: int) -> None:
        self._read_at = read_at
        self._start = start
        self._end = end
        self._buffer = bytearray()
        self._position = 0
        self._taken = 0

    def _fill(self, wanted: int) -> None:
        available = self._end - self._start - len(self._buffer)
        missing = min(wanted - (len(self._buffer) - self._position), available)
        if missing > 0:
            fetch = min(max(missing, self._CHUNK), available)
            self._buffer += self._read_at(self._start + len(self._buffer), fetch)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = self._end - self._start - self._position
        self._fill(size)
        data = bytes(self._buffer[self._position : self._position + size])
        self._position += len(data)
        return data

    def readline(self) -> bytes:
        # Text opcodes (protocol 0) end at a newline; search the buffer a chunk at a time, since
        # byte-by-byte reads took minutes on a legacy pickle holding one 60 MB line.
        searched = self._position
        while True:
            newline = self._buffer.find(b"\n", searched)
            if newline >= 0:
                return self.read(newline + 1 - self._position)
            searched = len(self._buffer)
            before = len(self._buffer)
            self._fill(len(self._buffer) - self._position + self._CHUNK)
            if len(self._buffer) == before:
                return self.read(len(self._buffer) - self._position)

    def tell(self) -> int:
        return self._position - self._taken

    def take(self) -> bytes:
        """The bytes read since the previous ``take`` (after a scan: one pickle, STOP included)."""
        data = bytes(self._buffer[self._taken : self._position])
        self._taken = self._position
        return data

    @property
    def offset(self) -> int:
        """Absolute file offset of the next unread byte."""
        return self._start + self._position


def scan_pickle(stream: Any, path: str | Path, what: str) -> int:
    """Walk the opcodes of one pickle (stopping after STOP), enforce the resource limits, and
    return the opcode count."""
    opcodes = 0
    marks = 0
    nesting = NestingTracker(path, what)
    try:
        for opcode, argument, _position in pickletools.genops(stream):
            opcodes += 1
            if opcodes > limits.MAX_PICKLE_OPCODES:
                raise ResourceLimitError(path, f"{what} has more than {limits.MAX_PICKLE_OPCODES:,} opcodes")
            if opcode.name == "MARK":
                marks += 1
                if marks > limits.MAX_NESTING_DEPTH:
                    raise ResourceLimitError(
                        path, f"{what} nests deeper than {limits.MAX_NESTING_DEPTH} levels"
                    )
            elif pickletools.markobject in opcode.stack_before:
                marks -= 1
            # Writers number memo slots consecutively; a far-off index only inflates the table.
            if opcode.name in _MEMO_OPCODES and (
                not isinstance(argument, int) or not 0 <= argument <= opcodes
            ):
                raise CorruptFileError(path, f"{what} uses memo index {describe(argument)} out of range")
            nesting.step(opcode, argument)
    except FormatError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError) as error:
        raise CorruptFileError(path, f"{what} is truncated or not a pickle ({error})") from error
    return opcodes


def load_pickle(data: bytes, path: str | Path, what: str) -> tuple[Any, RestrictedUnpickler]:
    """Scan, then unpickle ``data`` with the allow-list; returns the object and the unpickler
    (whose ``storages`` lists the storages the object refers to)."""
    if len(data) > limits.MAX_PICKLE_BYTES:
        raise ResourceLimitError(
            path, f"{what} is {len(data):,} bytes, over the {limits.MAX_PICKLE_BYTES:,}-byte limit"
        )
    opcodes = scan_pickle(io.BytesIO(data), path, what)
    unpickler = RestrictedUnpickler(data, path)
    unpickler.opcodes = opcodes
    try:
        result = unpickler.load()
    except FormatError:
        raise
    except Exception as error:
        # The C unpickler can fail with many builtin types on hostile bytes (UnpicklingError,
        # TypeError from a REDUCE on a non-callable, KeyError from a missing memo entry...): all of
        # them mean the same thing here, and none of them ran code from the file.
        raise CorruptFileError(
            path, f"{what} is not a valid checkpoint pickle ({type(error).__name__}: {str(error)[:200]})"
        ) from error
    return result, unpickler
