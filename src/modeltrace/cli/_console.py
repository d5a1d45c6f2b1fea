"""The console the commands print to: names stay whole in a terminal of any width, a file or a pipe.

Rich fits every table to the console width, 80 columns when stdout is not a terminal, by wrapping
cells and, when that is not enough, cutting them: ``make demo > demo.txt`` broke zoo transform
names in two (``permuted-units-head`` / ``s``). Here:

- stdout is a file or pipe: a table is as wide as its content (one row per line, greppable) and
  text is not wrapped at all; a file has no width, so the viewer decides.
- stdout is a terminal too narrow for a table: the table is printed at its minimum width, where
  every ``no_wrap`` column (names) is whole and every other column is as wide as its longest
  word. The terminal then wraps the long lines; Rich would otherwise cut names with an ellipsis.
- otherwise Rich lays the table out as usual.

Commands mark the columns that hold names, ids and paths ``no_wrap=True``; prose columns wrap
between words.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table

#: Width offered when measuring a table's natural width (no table is this wide).
_UNBOUNDED = 1_000_000


def _minimum_width(console: Console, options: ConsoleOptions, table: Table) -> int:
    """The narrowest layout that breaks no name: ``no_wrap`` columns whole, others at their longest word.

    Rich's own minimum counts a ``no_wrap`` column at its longest word too, but its layout never
    narrows such a column, so at that width it squeezes the wrapping columns below their words.
    Rich has no public per-column measure; ``_measure_column`` is the one its layout uses.
    """
    widths = [
        (measured.maximum if column.no_wrap else measured.minimum)
        for column in table.columns
        for measured in [table._measure_column(console, options, column)]
    ]
    return sum(widths) + table._extra_width


class _AtWidth:
    """Render a table at exactly ``width`` columns, wider than the console if need be."""

    def __init__(self, renderable: RenderableType, width: int) -> None:
        self.renderable = renderable
        self.width = width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from console.render(self.renderable, options.update_width(self.width))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


class ReadableConsole(Console):
    """A :class:`rich.console.Console` that never cuts a table's names (see the module docstring)."""

    def table_width(self, table: Table) -> int:
        """The width ``table`` is printed at: natural in a file or pipe, at least its minimum here."""
        options = self.options.update_width(_UNBOUNDED)
        if not self.is_terminal:
            return Measurement.get(self, options, table).maximum
        return max(self.width, _minimum_width(self, options, table))

    def print(self, *objects: Any, **options: Any) -> None:
        if len(objects) == 1 and isinstance(objects[0], Table) and options.get("width") is None:
            width = self.table_width(objects[0])
            if width > self.width:
                objects = (_AtWidth(objects[0], width),)
                options["crop"] = False  # Rich would crop each line at the console width
        elif not self.is_terminal:
            options.setdefault("soft_wrap", True)
        super().print(*objects, **options)
