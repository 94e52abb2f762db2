"""One paper's page (`report --paper`, and what `reproduce` writes at its end).

The page is a workflow's product, not a report's: besides the paper's tables, figures
and the checklist of its models, it says how they were made (the command, the models'
wall time, the environments) and what the paper's plan skips here (absent data sets,
external weights), which only the reproduction plan knows.
"""

from __future__ import annotations

import sqlite_utils

from advbench import checks as chk
from advbench import claims, reproduce
from advbench.files import write_atomic
from advbench.progress import fmt_time
from advbench.report import drawing, html
from advbench.report import figures as figs
from advbench.report import table_views as views
from advbench.report import tables as tab
from advbench.report.papers import FigureSpec, TableSpec
from advbench.reproduce import specs_of
from advbench.suites import allows_shortcuts


def paper_models(db: sqlite_utils.Database, paper: str) -> list[str]:
    """Stored models that fill a role of the paper's tables or figures."""
    store = tab.StoredRuns(db)
    names = []
    for spec in specs_of(paper):
        for data, key in spec.roles:
            names += [m["name"] for m in store.role_models(spec, data, key)]
    return list(dict.fromkeys(names))


def paper_preamble(db, paper: str, scale: str | None, skipped=()) -> list[str]:
    models = paper_models(db, paper)
    if scale is None and models:  # the scale the stored runs were made at
        marks = ",".join("?" * len(models))
        scales = sorted({r[0] for r in db.execute(
            f"select distinct scale from runs where model in ({marks}) and scale is not null",
            models)})  # fmt: skip
        scale = ",".join(scales) or None
    split = reproduce.time_split(db, models, afresh=not allows_shortcuts(paper))  # read once
    lines = [
        f"Command: advbench reproduce {paper}" + (f" --scale {scale}" if scale else ""),
        f"{len(models)} models; wall time of their training and attacks: "
        f"{fmt_time(split['training'] + sum(split['attacks'].values()))} (summed over "
        "steps, as stored)",
    ]
    if models and split["attacks"]:
        top = sorted(split["attacks"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            f"Where the time goes: training {fmt_time(split['training'])}, attacks "
            f"{fmt_time(sum(split['attacks'].values()))} (most: "
            + ", ".join(f"{label} {fmt_time(t)}" for label, t in top) + "); same-budget "
            f"controls and seed replicates {fmt_time(split['controls and seeds'])} of the total"
        )
    if models:
        marks = ",".join("?" * len(models))
        envs = sorted({
            f"advbench {r['advbench']}, python {r['python']}, torch {r['torch']}, foolbox "
            f"{r['foolbox']}, ART {r['art']} on {r['device']} ({r['platform']})"
            for r in db.query(f"select e.* from runs r join environments e on e.id = r.env_id "
                              f"where r.model in ({marks})", models)})  # fmt: skip
        lines += [f"Environment: {e}" for e in envs]
    lines += list(skipped)
    return lines


def paper_page(db, paper: str, fmt: str, out_dir, *, data_dir=None, scale=None, skipped=()):
    """Write the paper's page into out_dir: report.html, or README.md with figures/*.png.
    Returns the page's path."""
    specs = specs_of(paper)
    table_specs = [s for s in specs if isinstance(s, TableSpec)]
    figure_specs = [s for s in specs if isinstance(s, FigureSpec)]
    models = paper_models(db, paper)
    preamble = paper_preamble(db, paper, scale, skipped)
    shown = scale or next((line.split("--scale ")[1] for line in preamble[:1]
                           if "--scale " in line), None)  # fmt: skip
    if not skipped:  # what the paper's plan skips here (absent data sets, external weights)
        base = (shown or "smoke").split(",")[0]
        preamble += reproduce.plan(db, paper, base, data_dir=data_dir).skipped
    title = f"{paper}: reproduction" + (f" at scale {shown}" if shown else "")
    if fmt == "html":
        path = out_dir / "report.html"
        write_atomic(path, html.page(db, table_specs, figure_specs, data_dir=data_dir,
                                     models=models, title=title, preamble=preamble))  # fmt: skip
        return path
    store = tab.StoredRuns(db)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    out = [f"# {title}", "", *[f"- {line}" for line in preamble], "", "## Tables", ""]
    for spec in table_specs:
        out.append(views.render(spec, tab.cells(db, spec, store), "markdown", db))
    found = claims.judge(db, paper)
    if found:
        tally = claims.tally(found)
        out += ["## Claims", "", f"The paper's claims (its plan, `benchmarks/plans/{paper}.json`) "
                "decided on the paired per-sample evidence of the cells above: a − b on the "
                "instances both hold, its 95 % interval, exact McNemar or a sign-flip p, "
                f"Holm-adjusted over the paper's claims ({tally}).", "",
                claims.markdown(found)]  # fmt: skip
    acting = claims.controls(db, paper)
    if acting:
        out += ["## Defenses against their same-budget controls", "",
                "Each fine-tuned defense against the same fine-tuning with its term off "
                "(its weight 0, no noisy copies, ε = 0: the controls table says which; "
                "parent, recipe, seed, data order, optimiser and steps alike), on the same "
                "instances: does it move what it penalises or targets beyond what continued "
                "training alone does? Seed replicates each paired, then their mean with a "
                "t-interval over seeds. p Holm-adjusted over the table.", "",
                claims.controls_markdown(acting)]  # fmt: skip
    out += ["## Figures", ""]
    for spec in figure_specs:
        fd = figs.build(db, spec, store, data_dir)
        stem = spec.id.replace(":", "_")
        drawing.write(drawing.draw(fd), fig_dir, stem, ("png",))
        out += [f"### {spec.id}", "", f"![{spec.id}](figures/{stem}.png)", ""]
        out += [f"{line}  " for line in fd.caption]
        out += [f"{p.panel.title}: {p.note}  " for p in fd.panels if p.note] + [""]
    out += ["## Evaluation checklist", ""]
    attacked = {r["model"] for r in db.query("select distinct model from runs")}
    for model in (m for m in models if m in attacked):
        runs = chk.gather(db, model)
        verdicts = chk.run(db, model, runs)
        tally = ", ".join(f"{s} {sum(v.status == s for v in verdicts)}"
                          for s in ("pass", "warn", "fail", "skip"))  # fmt: skip
        out += [f"### {model}: {tally} ({len(runs)} runs)", "",
                "| check | verdict | numbers | to settle |", "|---|---|---|---|"]  # fmt: skip
        for v in verdicts:
            cells = [v.check, v.status, v.numbers, f"`{v.settle}`" if v.settle else ""]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    path = out_dir / "README.md"
    write_atomic(path, "\n".join(out) + "\n")
    return path
