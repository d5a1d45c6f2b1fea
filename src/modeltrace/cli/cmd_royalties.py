"""``modeltrace royalties terms add|report|statement``: the pooled licensing repository."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modeltrace import api
from modeltrace.cli._app import DbOption, app, console, emit_json
from modeltrace.errors import UsageError

royalties_app = typer.Typer(
    help="Royalty terms, revenue reports and statements from declared compute shares (docs/royalties.md).",
    no_args_is_help=True,
)
terms_app = typer.Typer(help="Owners' fee schedules for their base models.", no_args_is_help=True)
royalties_app.add_typer(terms_app, name="terms")
app.add_typer(royalties_app, name="royalties")

CurrencyOption = Annotated[str, typer.Option("--currency", help="ISO 4217 code.")]
PeriodOption = Annotated[str, typer.Option("--period", help="The month, YYYY-MM (e.g. 2026-11).")]


@terms_app.command("add")
def terms_add(
    owner: Annotated[str, typer.Argument(help="The owner (its registry namespace).")],
    model: Annotated[str, typer.Argument(help="The base model's name, as labels declare it.")],
    rate: Annotated[str, typer.Option("--rate", help="Share of attributed revenue: 0.05 or 5%.")],
    threshold: Annotated[
        str, typer.Option("--threshold", help="Attributed revenue per derivative and period that is free.")
    ] = "0",
    currency: CurrencyOption = "USD",
    db: DbOption = None,
) -> None:
    """Register (or replace) OWNER's fee schedule for MODEL."""
    result = api.royalties_terms_add(owner, model, rate, threshold, currency, db=db)
    terms = result["terms"]
    state = "replaced" if result["replaced"] else "registered"
    console.print(
        f"{state}: {terms['owner']} asks {terms['rate']} of the revenue attributed to {terms['model']} "
        f"above {terms['threshold']} {terms['currency']} per derivative and period",
        markup=False,
    )


@royalties_app.command("report")
def report(
    derivative: Annotated[str, typer.Argument(help="The registered derivative: id, NAME or NAMESPACE/NAME.")],
    period: PeriodOption,
    amount: Annotated[str, typer.Option("--amount", help="Revenue for the period, e.g. 1234.56.")],
    currency: CurrencyOption = "USD",
    db: DbOption = None,
) -> None:
    """Report DERIVATIVE's revenue for a period (reporting again replaces it; the old figure is kept)."""
    result = api.royalties_report(derivative, period, amount, currency, db=db)
    stored = result["report"]
    console.print(
        f"reported: {stored['derivative']} {stored['period']} {stored['amount']} {stored['currency']}",
        markup=False,
    )
    if result["replaced"] is not None:
        old = result["replaced"]
        console.print(f"replaces {old['amount']} {old['currency']} reported at {old['reported_at']} "
                      f"({len(result['history'])} reports on file)", markup=False)  # fmt: skip


@royalties_app.command("statement")
def statement(
    owner: Annotated[str, typer.Argument(help="The owner whose statement to print.")],
    period: PeriodOption,
    json_output: Annotated[bool, typer.Option("--json", help="Print the statement as JSON.")] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="Print the statement as CSV.")] = False,
    db: DbOption = None,
) -> None:
    """OWNER's royalty statement for a period: one line per derivative and owned model."""
    if json_output and csv_output:
        raise UsageError("Give --json or --csv, not both.")
    result = api.royalties_statement(owner, period, db=db)
    if json_output:
        emit_json(result.as_dict())
        return
    if csv_output:
        typer.echo(result.to_csv(), nl=False)
        return
    data = result.as_dict()
    table = Table(title=f"Royalty statement of {data['owner']} for {data['period']} ({data['currency']})")
    for column in ("derivative", "model"):
        table.add_column(column, no_wrap=True)
    table.add_column("status", no_wrap=True)
    for column in ("share", "revenue", "attributed", "fee"):
        table.add_column(column, justify="right", no_wrap=True)
    for line in data["lines"]:
        table.add_row(
            line["derivative"], line["model"], line["status"], line["share"] or "-", line["revenue"],
            line["attributed_revenue"] or "-", line["fee"],
        )  # fmt: skip
    table.add_section()
    table.add_row("TOTAL", "", "", "", "", "", data["total"])
    console.print(table)
    for line in data["lines"]:
        trace = "; ".join(
            f"{e['model']} -> {e['base']} {e['share']} ({e['evidence']})" for e in line["trace"]
        )
        detail = " ".join(part for part in (trace, line["note"]) if part)
        if detail:
            console.print(f"{line['derivative']} / {line['model']}: {detail}", markup=False, soft_wrap=True)
