"""``modeltrace probe URL``: which model is behind an OpenAI-compatible endpoint?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modeltrace import api
from modeltrace.cli._app import app, console, emit_json, err_console


@app.command()
def probe(
    url: Annotated[str, typer.Argument(help="Endpoint base URL, e.g. https://api.example.com/v1")],
    model: Annotated[
        str | None, typer.Option("--model", help="Model name to request (default: first in /v1/models)")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Name of the environment variable holding the API key")
    ] = None,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Hard cap on identification requests")] = 64,
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference",
            help="Reference for the behavioural test: endpoint URL or local model folder (repeatable)",
        ),
    ] = None,
    reference_api_key_env: Annotated[
        str | None, typer.Option("--reference-api-key-env", help="Env variable with the references' API key")
    ] = None,
    prompts: Annotated[int, typer.Option("--prompts", min=1, help="Prompts for the behavioural test")] = 40,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.01, help="Per-request timeout in seconds")
    ] = 30.0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=32, help="Parallel requests")] = 4,
    evidence: Annotated[
        Path | None, typer.Option("--evidence", help="Evidence log path (JSON lines)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Probe an endpoint: identity hints, tokenizer family from token counts, optional behaviour test."""
    with err_console.status("Probing endpoint...", spinner="dots"):
        report = api.probe(
            url,
            model=model,
            api_key_env=api_key_env,
            budget=budget,
            references=reference or [],
            reference_api_key_env=reference_api_key_env,
            behaviour_prompts=prompts,
            timeout_s=timeout,
            concurrency=concurrency,
            evidence_path=evidence,
        )
    data = report.to_dict()
    if as_json:
        emit_json(data)
        return
    _print_report(data)


def _print_report(data: dict[str, Any]) -> None:
    tokenizer = data["tokenizer"]
    console.print(f"[bold]Endpoint[/] {data['endpoint']}  model={data['model']}  requests={data['requests']}")
    for contradiction in data["contradictions"]:  # first: the disagreement an auditor must see
        console.print(f"[bold red]Contradiction:[/] {contradiction['message']}", highlight=False)
    hints = Table(title="Identity hints (reported verbatim; a hint is not a verdict)", show_lines=False)
    for column in ("source", "field", "value"):
        hints.add_column(column, no_wrap=column != "value", overflow="fold")
    for hint in data["hints"]:
        style = "bold yellow" if hint["identity"] else ""
        hints.add_row(hint["source"], hint["field"], hint["value"][:300], style=style)
    console.print(hints)
    units = Table(title=f"Per-unit evidence (repeats {data['probe_set']['repeats']})")
    for column in ("unit", "category", "prompt_tokens", "observed", *data["probe_set"]["references"]):
        units.add_column(column, no_wrap=True)
    for row in data["units"]:
        observed = row["observed"]
        cells = [
            (f"[green]{row['expected'][name]}[/]" if name in row["matches"] else str(row["expected"][name]))
            for name in data["probe_set"]["references"]
        ]
        shown = "-" if observed is None else (f"{observed:g}")
        units.add_row(repr(row["text"]), row["category"], str(row["prompt_tokens"]), shown, *cells)
    console.print(units)
    candidates = ", ".join(f"{c['name']} {c['matches']}/{c['units']}" for c in tokenizer["candidates"])
    console.print(f"Candidates: {candidates}")
    colour = "red" if tokenizer["verdict"] == "unknown" else "green"
    console.print(
        f"[bold]Tokenizer verdict:[/] [{colour}]{tokenizer['verdict']}[/]  "
        f"margin {tokenizer['margin']} units  "
        f"({tokenizer['reason']})"
    )
    if data["gateway_flag"]["suspected"]:
        for reason in data["gateway_flag"]["reasons"]:
            console.print(f"[yellow]Gateway flag:[/] {reason}")
    for route, evidence in data["extra_evidence"].items():
        if isinstance(evidence, dict) and evidence.get("available"):
            where = f" ({evidence['route']}, field '{evidence['field']}')" if "route" in evidence else ""
            matched = evidence["matches"] or "no reference"
            console.print(f"Extra evidence from {route}{where}: exact match with {matched}")
    if data["budget_exhausted"]:
        console.print(
            "[yellow]The request budget ran out; the verdict uses the units measured before that.[/]"
        )
    if data["behaviour"]:
        behaviour = data["behaviour"]
        table = Table(title=f"Behavioural test: greedy next token on {behaviour['prompts']} prompts")
        for column in ("reference", "asked as", "agree", "rate", "p (different, Holm)", "verdict"):
            table.add_column(column, no_wrap=column in ("reference", "verdict"))
        for row in behaviour["references"]:
            table.add_row(
                row["reference"], row["prompt_format"], f"{row['agreements']}/{row['compared']}",
                f"{row['agreement_rate']:.2f}", f"{row['p_different_holm']:.3g}", row["verdict"],
            )  # fmt: skip
        console.print(table)
        if behaviour["closest"]:
            console.print(f"Significantly closest reference: {behaviour['closest']}")
    if data["evidence_log"]:
        console.print(f"Evidence log: {data['evidence_log']}")
