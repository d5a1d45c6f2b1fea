"""The facade's lazy table: every public name of ``modeltrace.api`` resolves to the module that
defines it, and the table (``_FACADES``, read at run time) agrees with the TYPE_CHECKING imports (read
by type checkers), so a name added to one and not the other is noticed."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from modeltrace import api


def test_every_public_name_resolves_to_its_facade_module() -> None:
    for name in api.__all__:
        value = getattr(api, name)
        assert value is getattr(sys.modules[f"modeltrace.api.{api._MODULE_OF[name]}"], name), name
    with pytest.raises(AttributeError, match="no_such_name"):
        api.no_such_name  # noqa: B018


def test_lazy_table_and_type_checking_imports_agree() -> None:
    """Type checkers read the TYPE_CHECKING imports; run time reads _FACADES: both name the same things."""
    tree = ast.parse(Path(api.__file__).read_text(encoding="utf-8"))
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    imported = {
        alias.name: node.module.rsplit(".", 1)[1]
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    assert imported == api._MODULE_OF
