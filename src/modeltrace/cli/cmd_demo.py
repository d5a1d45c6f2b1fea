"""``modeltrace demo``: build the demo zoo under MODELTRACE_HOME and run the main job on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modeltrace import api
from modeltrace.cli._app import app, console
from modeltrace.cli._card import print_card
from modeltrace.cli._zoo_accuracy import print_accuracy, run_accuracy
from modeltrace.errors import ModeltraceError

#: A license-check scenario from the docs: a proprietary fine-tune of Kimi K2.5 earning US$80 M a month.
_COMPOSER_LINEAGE = """name: composer-2
license: proprietary
parents:
  - {name: kimi-k2.5, license: kimi-k2.5, relation: finetune}
"""


@app.command()
def demo(
    home: Annotated[
        Path | None, typer.Option(help="State folder (default: $MODELTRACE_HOME or ~/.modeltrace).")
    ] = None,
    lineage: Annotated[
        bool, typer.Option(help="Also train the lineage zoo (needs torch) and print the accuracy table.")
    ] = True,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the lineage zoo even if one is there.")] = False,
) -> None:
    """Generate models locally (no download) and show what modeltrace finds in them.

    1. inspect: architecture cards of a few small models and of DeepSeek-V3's real config;
    2. compare: lineage verdicts over a trained zoo of models with known ancestry (every transform);
    3. license check: what a Kimi K2.5 fine-tune must do at US$80 M monthly revenue;
    4. registry: the zoo with declared and detected lineage (with the lineage zoo);
    5. the seed case: a pruned INT4 product of a Kimi-shaped base found from the weights alone, an
       independent model of the same architecture told apart, and the licence the ancestry carries.
    """
    zoo = api.build_demo_zoo(home)
    console.rule("[bold]1. inspect[/]: the L1 architecture card")
    console.print(f"Demo models in {zoo}")
    for model_path in api.demo_zoo_members(zoo):
        console.rule(model_path.name, style="dim")
        print_card(api.inspect(model_path))
    if lineage:
        _lineage_demo(zoo.parent / "lineage-zoo", rebuild)
    _license_demo(zoo)
    if lineage:
        # With --home the registry lives there too; otherwise $MODELTRACE_DB or MODELTRACE_HOME's.
        _registry_demo(zoo.parent / "lineage-zoo", None if home is None else str(home / "registry.sqlite"))
    seed_case_step(zoo.parent / "seed-case")


def seed_case_step(directory: Path, mau: int = 200_000_000) -> None:
    """Step 5: build the seed case, print both verdicts (a line each) and the detected ancestry's licence."""
    console.rule("[bold]5. the seed case[/]: a vendor product of a Kimi-shaped base, found from the weights")
    result = api.seed_case_demo(directory, mau=mau)
    console.print(f"Seed-case models in {directory}", markup=False, soft_wrap=True)
    for pair in result["comparisons"]:
        detail = f"; {pair['relation']}" if pair["relation"] else ""
        if pair["verdict"] in ("related", "same-weights") and pair["layer_map"]:
            detail += "; layer map " + ", ".join(f"{k}->{v}" for k, v in pair["layer_map"].items())
        console.print(
            f"{pair['suspect']} vs {pair['base']}: {pair['verdict']} (log10 p = {pair['log10_p']:.1f}, "
            f"{pair['p_value_test']}){detail}",
            markup=False,
            soft_wrap=True,
        )
    report = result["license"]
    console.print(f"licence check of the detected ancestry at {mau:,} monthly users "
                  f"(lineage file: {result['lineage_file']}):", markup=False, soft_wrap=True)  # fmt: skip
    for finding in report["obligations"] + report["violations"]:
        console.print(f"- {finding['kind']} ({finding['license']}): {finding['text']}", markup=False)
    console.print(f"tier: {report['tier']}", markup=False)


def _lineage_demo(directory: Path, rebuild: bool) -> None:
    console.rule("[bold]2. compare[/]: lineage from the weights, on a zoo with known ancestry")
    manifest_path = directory / "zoo.json"
    try:
        if rebuild or not manifest_path.is_file():
            console.print(f"Training the quick lineage zoo in {directory} (a few minutes on 2 cores) ...")
            manifest_path = api.build_zoo(directory, quick=True)
        else:
            api.load_zoo_manifest(directory)
            console.print(f"Reusing the lineage zoo in {directory} (--rebuild to train it again)")
    except ModeltraceError as error:  # e.g. torch missing: the rest of the demo still runs
        console.print(f"[yellow]skipped:[/] {error}")
        return
    summary = run_accuracy(manifest_path, alpha=api.DEFAULT_ALPHA)
    print_accuracy(summary, alpha=api.DEFAULT_ALPHA)
    models = directory / "models"
    # A GELU model whose MLP units and heads were shuffled: only the value-sign test can see it.
    suspect, base = models / "gpt2-s0.permuted-units-heads", models / "gpt2-s0"
    console.print(f"Try: modeltrace compare {suspect} {base} --report report.html")


def _license_demo(zoo: Path) -> None:
    console.rule("[bold]3. license check[/]: a Kimi K2.5 fine-tune at US$80 M monthly revenue")
    lineage_file = zoo.parent / "composer-2.lineage.yaml"
    lineage_file.write_text(_COMPOSER_LINEAGE, encoding="utf-8")
    report = api.check_license(
        lineage=lineage_file, use="commercial", distribution="hosted", monthly_revenue=80_000_000
    ).as_dict()
    console.print(f"lineage file: {lineage_file}")
    for finding in report["obligations"] + report["violations"]:
        console.print(f"- [bold]{finding['kind']}[/] ({finding['license']}): {finding['text']}")
        console.print(f"  [dim]clause: \u201c{finding['clause']}\u201d[/]")
    console.print(f"tier: {report['tier']}")


#: Two claims the demo makes on purpose against the weights, so the registry has conflicts to show.
_FALSE_CLAIMS = {
    "llama-s0.finetune-b": {"from_scratch": True, "declared": []},
    "llama-s0.rl": {"from_scratch": None, "declared": [("llama-s1", "rl")]},
}


def _registry_demo(directory: Path, db: str | None = None) -> None:
    console.rule("[bold]4. registry[/]: the zoo in the lineage registry, declared and detected")
    try:
        manifest = api.load_zoo_manifest(directory)
    except ModeltraceError as error:
        console.print(f"[yellow]skipped:[/] {error}")
        return
    console.print(f"registry: {api.registry_url(db)}")
    with api.open_registry(db) as registry:
        for entry in manifest["models"]:
            claim = _FALSE_CLAIMS.get(entry["name"])
            declared = [(parent, entry["transform"]) for parent in entry["parents"]]
            result = api.registry_add(
                directory / entry["path"],
                name=entry["name"],
                registry=registry,
                declared_bases=claim["declared"] if claim else declared,
                from_scratch=claim["from_scratch"]
                if claim
                else (True if entry["transform"] == "base" else None),
            )
            state = "added" if result["created"] else "known"
            own = [edge for edge in result["detected"] if edge["suspect"] == entry["name"]]
            closest = next((edge["base"] for edge in own if edge["closest"]), "-")
            others = f" (+{len(own) - 1} more related)" if len(own) > 1 else ""
            console.print(
                f"{state:<6} {entry['name']:<38} closest detected base: {closest}{others}", markup=False
            )
        conflicts = [c for m in api.registry_list(registry=registry, limit=500)["models"]
                     for c in api.registry_lineage(m["id"], registry=registry)["conflicts"]
                     if c["model_id"] == m["id"]]  # fmt: skip
    console.print(f"false claims made on purpose: {', '.join(_FALSE_CLAIMS)}; conflicts found:")
    for conflict in conflicts:
        console.print(f"  {conflict['model']}: {conflict['message']}", markup=False)
    console.print("Serve the registry (web UI and REST API) with:")
    console.print(
        "modeltrace serve --port 8080" + (f" --db {db}" if db else ""), markup=False, soft_wrap=True
    )
