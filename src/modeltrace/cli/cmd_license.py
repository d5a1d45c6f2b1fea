"""``modeltrace license check|show|list``: what every licence in a model's ancestry demands.

``license check`` exits 0 when compliant with nothing to do, 1 with obligations to fulfil (or
licences to identify), 2 on violations, so that it can gate a CI pipeline; unreadable input exits 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from typer.core import TyperCommand

from modeltrace import api
from modeltrace.cli._app import app, console, emit_json
from modeltrace.errors import LicenseError

license_app = typer.Typer(
    name="license",
    help="Licence compliance across a model's whole ancestry.",
    no_args_is_help=True,
)
app.add_typer(license_app, name="license")

_TIER_STYLE = {
    "research-only": "bold red",
    "commercial-restricted": "bold yellow",
    "commercial-permissive": "bold green",
    "unknown": "bold magenta",
}
_CLAUSE_WIDTH = 180
#: The --purpose categories (modeltrace.licenses.profile.PURPOSES; a test keeps the two equal).
_PURPOSES = (
    "military, weapons, surveillance, biometric-identification, medical-advice, legal-advice, "
    "financial-advice, minors, critical-infrastructure, disinformation, automated-decisions, "
    "discrimination, malware"
)


class _InputErrorCommand(TyperCommand):
    """A command whose usage errors (unknown option, missing value) exit 3, not Click's 2.

    ``license check`` exit 2 means "violations" to a CI gate; a mistyped flag must not read as one.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except Exception as error:
            # Matched by name: Typer >= 0.29 raises its vendored Click's UsageError, older ones Click's.
            if any(cls.__name__ == "UsageError" for cls in type(error).__mro__):
                error.exit_code = 3  # type: ignore[attr-defined]
            raise


@license_app.command("check", cls=_InputErrorCommand)
def check(
    model: Annotated[
        str | None,
        typer.Argument(
            help="Model folder (with modeltrace-label.json or README.md), model card or label file."
        ),
    ] = None,
    lineage: Annotated[
        Path | None, typer.Option("--lineage", help="YAML/JSON lineage tree (see docs/licenses.md).")
    ] = None,
    use: Annotated[str | None, typer.Option("--use", help="commercial | research  (required)")] = None,
    distribution: Annotated[
        str | None,
        typer.Option("--distribution", help="hosted (API/app) | weights (you ship them)  (required)"),
    ] = None,
    # Numbers are taken as text and parsed by the facade: "1.5e8" is a valid user count, and a bad
    # value must exit 3 (input error), not Typer's usage exit 2 (which a CI gate reads as violations).
    mau: Annotated[
        str, typer.Option("--mau", help="Monthly active users of your products or services (e.g. 1.5e8).")
    ] = "0",
    monthly_revenue: Annotated[
        str, typer.Option("--monthly-revenue", help="Monthly revenue in US dollars (e.g. 2e6).")
    ] = "0",
    name: Annotated[str | None, typer.Option("--name", help="The name you publish the model under.")] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Your domicile: ISO 3166-1 code (DE, DEU) or EU.")
    ] = None,
    release_date: Annotated[
        str | None, typer.Option("--release-date", help="Date (YYYY-MM-DD) your --mau figure refers to.")
    ] = None,
    granted: Annotated[
        list[str] | None,
        typer.Option(
            "--granted",
            help="Licence id whose licensor granted you the licence it makes you request above a "
            "threshold (Llama > 700M MAU, Qwen > 100M MAU). Repeatable.",
        ),
    ] = None,
    purpose: Annotated[
        list[str] | None,
        typer.Option(
            "--purpose",
            help=f"What the model is used for, checked against each licence's prohibited uses "
            f"(repeatable): {_PURPOSES}.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """List every obligation and violation the ancestry's licences impose on this deployment.

    Exit codes: 0 compliant with nothing to do, 1 obligations to fulfil (or unknown licences),
    2 violations, 3 unreadable or missing input or a usage error.
    """
    # Checked here rather than by the option parser: a parser usage error exits 2, which a CI gate
    # would read as "violations"; a missing profile is an input error (exit 3).
    if use is None or distribution is None:
        missing = [
            flag for flag, value in (("--use", use), ("--distribution", distribution)) if value is None
        ]
        raise LicenseError(f"{' and '.join(missing)} required: e.g. --use commercial --distribution hosted")
    report = api.check_license(
        model,
        lineage=lineage,
        use=use,
        distribution=distribution,
        mau=mau,
        monthly_revenue=monthly_revenue,
        name=name,
        region=region,
        release_date=release_date,
        granted=granted or (),
        purposes=purpose or (),
    )
    if as_json:
        emit_json(report.as_dict())
    else:
        _print_report(report.as_dict())
    raise typer.Exit(report.exit_code)


def _print_report(report: dict[str, Any]) -> None:
    profile = report["profile"]
    scale = f"{profile['mau']:,} MAU, US${profile['monthly_revenue_usd']:,.0f}/month"
    console.print(
        f"[bold]{escape(report['model'])}[/]: {profile['use']} use, {profile['distribution']}, {scale}"
        + (f", named '{escape(profile['name'])}'" if profile["name"] else "")
        + (f", region {escape(profile['region'])}" if profile["region"] else "")
        + (f", granted: {escape(', '.join(profile['grants']))}" if profile["grants"] else "")
        + (f", purposes: {escape(', '.join(profile['purposes']))}" if profile["purposes"] else "")
    )
    console.print(_ancestry_tree(report["ancestry"]))
    for title, key, style in (
        ("Violations", "violations", "red"),
        ("Obligations", "obligations", "yellow"),
        ("Already satisfied", "satisfied", "green"),
    ):
        if report[key]:
            console.print(_findings_table(title, report[key], style))
    if report["unknown"]:
        table = Table(title="Unknown licences", title_style="bold magenta", show_lines=True)
        for column in ("Licence", "Ancestor", "Via", "What to do"):
            table.add_column(column, no_wrap=column in ("Licence", "Ancestor"))
        for item in report["unknown"]:
            table.add_row(
                escape(item["license"] or "(none)"),
                escape(item["ancestor"]),
                item["relation"],
                escape(item["text"]),
            )
        console.print(table)
    tier = report["tier"]
    console.print(f"Tier: [{_TIER_STYLE.get(tier, 'bold')}]{tier}[/]")
    verdict = {
        0: "[bold green]compliant, nothing to do[/]",
        1: "[bold yellow]obligations to fulfil[/]",
        2: "[bold red]violations[/]",
    }[report["exit_code"]]
    console.print(
        f"Result: {verdict} ({len(report['violations'])} violations, "
        f"{len(report['obligations'])} obligations, {len(report['unknown'])} unknown licences)"
    )


def _ancestry_tree(ancestry: list[dict[str, Any]]) -> Tree:
    # The report lists ancestors depth first with their path, so parents follow their child.
    root_tree = Tree("[bold]Ancestry[/]")
    branches: dict[tuple[str, ...], Tree] = {}
    for ancestor in ancestry:
        path = tuple(ancestor["path"])
        license_ = ancestor["license"] or "no licence declared"
        mark = "" if ancestor["known"] or license_ == "proprietary" else " [magenta](unknown)[/]"
        label = f"{escape(ancestor['name'])} [dim]{escape(license_)}[/]{mark} [cyan]{ancestor['relation']}[/]"
        parent = branches.get(path[:-1], root_tree)
        branches[path] = parent.add(label)
    return root_tree


def _findings_table(title: str, findings: list[dict[str, Any]], style: str) -> Table:
    table = Table(title=title, title_style=f"bold {style}", show_lines=True, expand=True)
    table.add_column("Licence", no_wrap=True)
    table.add_column("From ancestor", no_wrap=True)
    table.add_column("Kind", no_wrap=True)
    table.add_column("What to do", ratio=2, overflow="fold")
    table.add_column("Clause", ratio=3, style="dim")
    for finding in findings:
        clause = finding["clause"]
        if len(clause) > _CLAUSE_WIDTH:
            clause = clause[: _CLAUSE_WIDTH - 1].rstrip() + "…"
        table.add_row(
            escape(finding["license"]),
            escape(", ".join(finding["ancestors"])) + f" [cyan]({finding['relation']})[/]",
            finding["kind"],
            escape(finding["text"]),
            escape(f"“{clause}”"),
        )
    return table


@license_app.command("show")
def show(
    license_id: Annotated[str, typer.Argument(help="Licence id, e.g. llama3.1, qwen, Apache-2.0.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the licence as JSON.")] = False,
) -> None:
    """Show one licence's structured terms, each with the clause it comes from."""
    data = api.show_license(license_id).as_dict()
    if as_json:
        emit_json(data)
        return
    console.print(
        f"[bold]{escape(data['name'])}[/] ({escape(data['id'])}; ids: {escape(', '.join(data['keys']))})"
    )
    ids = data["ids"]
    hf = ids["hf"] if ids["hf"] != "other" else f"other (license_name: {ids['hf_license_name']})"
    console.print(f"ScanCode: {ids['scancode'] or '(none)'}; Hugging Face: {escape(hf)}")
    console.print(f"Source: {data['source_url']}")
    console.print(f"Tier: [{_TIER_STYLE[data['tier']]}]{data['tier']}[/]")
    commercial = data["commercial_use"]
    console.print(f"Commercial use allowed: {'yes' if commercial['allowed'] else 'no'}")
    console.print(f"  [dim]“{escape(commercial['clause'])}”[/]")
    console.print(f"Terms flow down to derivatives: {'yes' if data['flows_down']['value'] else 'no'}")
    console.print(f"Models trained on its outputs: {data['outputs']['treatment']}")
    if data["outputs"]["clause"]:
        console.print(f"  [dim]“{escape(data['outputs']['clause'])}”[/]")
    table = Table(title="Terms", show_lines=True, expand=True)
    table.add_column("Kind", no_wrap=True)
    table.add_column("When", ratio=1)
    table.add_column("What to do", ratio=2, overflow="fold")
    table.add_column("Clause", ratio=3, style="dim")
    for threshold in data["thresholds"]:
        when = _threshold_when(threshold)
        table.add_row(threshold["triggers"], when, escape(threshold["todo"]), escape(threshold["clause"]))
    for duty in data["duties"]:
        when = " / ".join(duty["distribution"]) + (" (also outputs)" if "outputs" in duty["covers"] else "")
        table.add_row(duty["kind"], when, escape(duty["todo"]), escape(duty["clause"]))
    if data["use_restrictions"]:
        restrictions = data["use_restrictions"]
        table.add_row(
            "use_restrictions",
            "always",
            escape(
                f"{restrictions['policy']} ({restrictions['url']}): " + "; ".join(restrictions["examples"])
            ),
            escape(restrictions["clause"]),
        )
    for rule in data["prohibited_uses"]:
        table.add_row(
            "prohibited_use",
            "--purpose " + ", ".join(rule["categories"]),
            escape(f"Not licensed for this use ({rule['policy']})."),
            escape(rule["clause"]),
        )
    if data["no_derivatives"]:
        no_derivatives = data["no_derivatives"]
        table.add_row(
            "no_derivatives",
            "weights",
            escape(no_derivatives["todo"]),
            escape(no_derivatives["clause"]),
        )
    for carve_out in data["geographic"]:
        table.add_row(
            "geographic",
            ", ".join(carve_out["regions"]),
            escape(carve_out["todo"]),
            escape(carve_out["clause"]),
        )
    console.print(table)


def _threshold_when(threshold: dict[str, Any]) -> str:
    parts = []
    if "mau" in threshold:
        parts.append(f"> {threshold['mau']:,} MAU")
    if "monthly_revenue_usd" in threshold:
        parts.append(f"> US${threshold['monthly_revenue_usd']:,}/month")
    if "revenue_12_months_usd" in threshold:
        parts.append(f"> US${threshold['revenue_12_months_usd']:,} over 12 months (MaaS)")
    if "annual_revenue_usd" in threshold:
        parts.append(f"> US${threshold['annual_revenue_usd']:,} annual revenue")
    when = " or ".join(parts)
    if threshold["kind"] == "mau_on_version_release_date":
        when += " on the version release date"
    return when + (", commercial use" if threshold["commercial_only"] else "")


@license_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False) -> None:
    """List the licences modeltrace knows, with their SPDX, ScanCode and Hugging Face ids."""
    licenses = api.list_licenses()
    if as_json:
        emit_json(
            [
                {
                    "license": item.key,
                    "id": item.id,
                    "ids": item.ids,
                    "name": item.name,
                    "tier": item.tier,
                    "keys": list(item.keys),
                    "source_url": item.source_url,
                }
                for item in licenses
            ]
        )
        return
    table = Table(title=f"{len(licenses)} licences")
    for column in ("Id", "SPDX id", "ScanCode", "HF tag", "Name", "Tier"):
        table.add_column(column, no_wrap=column != "Name")
    for item in licenses:
        hf = item.hf_license if item.hf_license != "other" else f"other: {item.hf_license_name}"
        table.add_row(
            item.key,
            item.id,
            item.scancode_key or "-",
            hf,
            escape(item.name),
            f"[{_TIER_STYLE[item.tier]}]{item.tier}[/]",
        )
    console.print(table)
