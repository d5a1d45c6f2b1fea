"""``modeltrace token create --namespace NS``: write tokens for the registry service."""

from __future__ import annotations

from typing import Annotated

import typer

from modeltrace import api
from modeltrace.cli._app import DbOption, app, console, err_console

token_app = typer.Typer(help="Bearer tokens that allow writes to one namespace of the registry.",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    namespace: Annotated[str, typer.Option("--namespace", help="The namespace the token may write to.")],
    db: DbOption = None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    token = api.token_create(namespace, db=db)
    console.print(token, markup=False, highlight=False, soft_wrap=True)
    err_console.print(f"token for namespace '{namespace}'; store it now, it cannot be shown again")
