"""How deeply a pickle nests the objects it builds, known before anything is unpickled.

The C unpickler builds structures iteratively, but hashing or comparing them recurses in C
without a depth check: a dict key, set element or frozenset element that is a tuple nested
100,000 levels deep (one ``TUPLE1`` opcode per level, no MARK to count) overflows the C stack and
kills the interpreter with a segmentation fault while the dict is being filled. So
:class:`NestingTracker` replays the opcodes on a model stack that holds only each object's depth
(the memo holds the same records, and in-place opcodes such as APPEND or SETITEM deepen their
container), and refuses the pickle once any object would nest deeper than the limit.

Mutable containers can be deepened after they were put inside another object; the outer record
is then not updated. That cannot reach the hash recursion: a tuple holding a list is unhashable,
so hashing stops at the list, and lists and dicts are deallocated without recursion.
"""

from __future__ import annotations

import pickletools
from pathlib import Path

from modeltrace.errors import CorruptFileError, ResourceLimitError
from modeltrace.formats import limits

#: Opcodes that add to the container below their arguments and leave it on the stack.
_IN_PLACE = frozenset(("APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"))
_MEMO_PUT = frozenset(("PUT", "BINPUT", "LONG_BINPUT"))
_MEMO_GET = frozenset(("GET", "BINGET", "LONG_BINGET"))


class _Record:
    """One object on the model stack: how many containers deep its contents go."""

    __slots__ = ("depth",)

    def __init__(self, depth: int) -> None:
        self.depth = depth


_MARK = object()  # a MARK on the model stack
_LEAF = _Record(0)  # scalars are never deepened in place, so they can share one record
#: What the opcodes that make an empty container push: each needs its own record, which the memo
#: shares, so that APPEND/SETITEM/ADDITEMS/BUILD deepen every reference to it.
_CONTAINERS = (pickletools.pylist, pickletools.pydict, pickletools.pyset, pickletools.anyobject)


class NestingTracker:
    """Feed every opcode of one pickle to :meth:`step`; it raises once nesting passes the limit."""

    def __init__(self, path: str | Path, what: str, limit: int = limits.MAX_NESTING_DEPTH) -> None:
        self.path = path
        self.what = what
        self.limit = limit
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}

    def _pop(self) -> object:
        if not self.stack:
            raise CorruptFileError(self.path, f"{self.what} pops from an empty stack")
        return self.stack.pop()

    def _pop_record(self) -> _Record:
        item = self._pop()
        if not isinstance(item, _Record):
            raise CorruptFileError(self.path, f"{self.what} has a MARK where an object belongs")
        return item

    def _pop_to_mark(self) -> int:
        """Pop down to and including the topmost MARK; the deepest popped record's depth."""
        deepest = 0
        while True:
            item = self._pop()
            if item is _MARK:
                return deepest
            deepest = max(deepest, item.depth)  # type: ignore[attr-defined]

    def _record(self, depth: int) -> _Record:
        if depth > self.limit:
            raise ResourceLimitError(self.path, f"{self.what} nests objects deeper than {self.limit} levels")
        return _Record(depth) if depth else _LEAF

    def _top_record(self) -> _Record:
        top = self.stack[-1] if self.stack else None
        if not isinstance(top, _Record):
            raise CorruptFileError(self.path, f"{self.what} has no object where a container belongs")
        return top

    def step(self, opcode: pickletools.OpcodeInfo, argument: object) -> None:
        name = opcode.name
        if name == "MARK":
            self.stack.append(_MARK)
        elif name == "MEMOIZE" or name in _MEMO_PUT:
            index = len(self.memo) if name == "MEMOIZE" else argument
            self.memo[index] = self._top_record()  # type: ignore[index]
        elif name in _MEMO_GET:
            if argument not in self.memo:
                raise CorruptFileError(self.path, f"{self.what} reads memo slot {argument} before writing it")
            self.stack.append(self.memo[argument])  # type: ignore[index]
        elif name == "DUP":
            self.stack.append(self._top_record())
        elif name in _IN_PLACE:
            if pickletools.markobject in opcode.stack_before:
                deepest = self._pop_to_mark()
            else:
                deepest = max(self._pop_record().depth for _ in opcode.stack_before[1:])
            container = self._top_record()
            if deepest + 1 > container.depth:
                if container is _LEAF:  # BUILD on a scalar: give it a record of its own
                    self.stack[-1] = container = _Record(0)
                container.depth = self._record(deepest + 1).depth
        else:
            deepest = -1
            if pickletools.markobject in opcode.stack_before:
                deepest = self._pop_to_mark()
            else:
                for _ in opcode.stack_before:
                    deepest = max(deepest, self._pop_record().depth)
            for kind in opcode.stack_after:
                record = self._record(deepest + 1)
                self.stack.append(_Record(0) if record is _LEAF and kind in _CONTAINERS else record)
