"""Commands that list: models, runs, data sets, architectures."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from advbench import api
from advbench.cli.app import (
    app,
    handles_errors,
    out,
)
from advbench.cli.options import (
    DbOpt,
    FormatOpt,
    WideOpt,
)
from advbench.cli.render import (
    list_registry,
)


@app.command()
@handles_errors
def models(db: DbOpt = None, format_: FormatOpt = "table", wide: WideOpt = False) -> None:
    """List stored models with their parent, defense, the paper role they fill (a control:
    ROLE-control; a seed replicate: ROLE-sN) and training seed, checksum and clean accuracy."""
    from advbench.listing import Column, check_format, render

    check_format(format_)
    rows = api.model_rows(db)

    def acc(r):
        return (f"{r['clean_accuracy'] * 100:.1f} [{r['ci_low'] * 100:.1f}, "
                f"{r['ci_high'] * 100:.1f}] n={r['clean_n']}")  # fmt: skip

    columns = [
        Column("name", "name", lambda r: r["name"]),
        Column("arch", "arch", lambda r: r["arch"], drop=3),
        Column("dataset", "dataset", lambda r: r["dataset"]),
        Column("defense", "defense", lambda r: r["defense"] or "—"),
        Column("parent", "parent", lambda r: r["parent"] or "—", drop=2),
        Column("role", "paper role", lambda r: r["role"] or "—", drop=6),
        Column("seed", "seed", lambda r: str(r["seed"]), drop=6),
        Column("clean_accuracy", "clean acc %", acc),
        Column("ci_low", "ci_low", lambda r: f"{r['ci_low']:.4f}", drop=9),
        Column("ci_high", "ci_high", lambda r: f"{r['ci_high']:.4f}", drop=9),
        Column("clean_n", "clean_n", lambda r: str(r["clean_n"]), drop=9),
        Column("checksum", "sha256", lambda r: r["checksum"][:10], drop=4),
        Column("created_at", "created", lambda r: str(r["created_at"])[:19], drop=5),
    ]
    if format_ == "table" and out.is_terminal:  # the interval is in the accuracy's cell
        columns = [c for c in columns if c.drop != 9]
    render(out, "Stored models (clean accuracy %, 95 % Wilson CI, n test samples)", columns,
           rows, fmt=format_, wide=wide)  # fmt: skip


@app.command()
@handles_errors
def runs(
    model: Annotated[str | None, typer.Option(help="Only runs of this model.")] = None,
    db: DbOpt = None,
    format_: FormatOpt = "table",
    wide: WideOpt = False,
) -> None:
    """List stored attack runs with their status, sample counts and timings."""
    from advbench.listing import Column, check_format, render

    check_format(format_)
    rows = api.run_rows(db, model)
    columns = [
        Column("id", "id", lambda r: r["id"][:10], drop=3),
        Column("model", "model", lambda r: r["model"]),
        Column("attack", "attack", lambda r: r["attack"]),
        Column("eps", "ε", lambda r: f"{r['eps']:g}"),
        Column("n", "n", lambda r: str(r["n"])),
        Column("seed", "seed", lambda r: str(r["seed"]), drop=4),
        Column("scale", "scale", lambda r: r["scale"], drop=2),
        Column("status", "status", lambda r: r["status"]),
        Column("wall_s", "time s", lambda r: f"{r['wall_s'] or 0:.1f}", drop=1),
    ]
    render(out, "Stored runs", columns, rows, fmt=format_, wide=wide)


@app.command()
@handles_errors
def datasets() -> None:
    """List the data sets advbench can load."""
    t = Table(title="Data sets")
    for c in ["name", "shape", "classes", "files expected in --data-dir", "description"]:
        t.add_column(c)
    for e in api.registry("datasets"):
        s = e.factory
        t.add_row(
            s.name,
            "x".join(map(str, s.shape)),
            str(s.classes),
            s.layout if s.needs_dir else "— (embedded)",
            s.description,
        )
    out.print(t)


@app.command()
@handles_errors
def archs() -> None:
    """List the architectures of the model zoo."""
    list_registry(api.registry("archs"), "Architectures", ["paper"])
