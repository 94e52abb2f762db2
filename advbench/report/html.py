"""`advbench report --format html --output DIR`: one self-contained page.

Tables, figures (PNG inline as data URIs), the evaluation checklist of every attacked
model, and each table's and figure's provenance: the commands whose runs fill it, scale,
seeds, models with their checksums, and the library versions the runs were made with.
Nothing is fetched when the page is viewed: no script, no stylesheet or image from outside.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import shlex

import sqlite_utils

from advbench.report import table_views as views
from advbench.report import tables as tab
from advbench.report.papers import PAPERS, FigureSpec, TableSpec

STYLE = """
body { font-family: sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.35; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 3px 6px; vertical-align: top; text-align: left; }
th { background: #eee; }
td.empty { color: #888; }
.caption, .prov { font-size: 0.8em; color: #444; }
.prov code { background: #f4f4f4; padding: 0 3px; }
img { max-width: 100%; border: 1px solid #ddd; }
.pass { color: #176317; font-weight: bold; } .warn { color: #a66b00; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; } .skip { color: #777; }
nav ul { columns: 3; font-size: 0.9em; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _anchor(ident: str) -> str:
    return ident.replace(":", "-")


def _runs_of(db: sqlite_utils.Database, run_ids: set[str]) -> list[dict]:
    if not run_ids:
        return []
    marks = ",".join("?" * len(run_ids))
    return [dict(r) for r in db.query(
        f"select r.*, e.advbench, e.torch, e.torchvision, e.foolbox, e.art, e.numpy, e.python, "
        f"e.device from runs r left join environments e on e.id = r.env_id "
        f"where r.id in ({marks})", sorted(run_ids))]  # fmt: skip


def commands(runs: list[dict]) -> list[str]:
    """The `advbench attack` commands whose runs these are: one per suite run of a model,
    else one per attack with its budgets."""
    out: dict[tuple, list] = {}
    for r in runs:
        if r["suite"]:
            key = ("suite", r["model"], r["suite"], r["scale"] or "", r["seed"])
            out.setdefault(key, [])
        else:
            key = ("attack", r["model"], r["attack"], r["targeted"] or "", r["source_model"] or "",
                   r["n"], r["seed"])  # fmt: skip
            out.setdefault(key, []).append(r["eps"])
    lines = []
    for key, eps in out.items():
        if key[0] == "suite":
            _, model, suite, scale, seed = key
            args = ["attack", "--model", model, "--suite", suite]
            args += ["--scale", scale] if scale else []
            args += ["--seed", seed]
        else:
            _, model, attack, targeted, source, n, seed = key
            budgets = ",".join(f"{e:g}" for e in sorted(set(eps)))
            args = ["attack", "--model", model, "--attack", attack, "--eps", budgets, "--n", n]
            args += ["--targeted", targeted] if targeted else []
            args += ["--source-model", source] if source else []
            args += ["--seed", seed]
        lines.append("advbench " + " ".join(shlex.quote(str(a)) for a in args))
    return sorted(lines)


def model_command(row: dict) -> str:
    """The `advbench train` / `harden` command that made a stored model, from its config."""
    import json

    from advbench.report.papers import _flatten

    cfg = json.loads(row["config"] or "{}")
    kind = cfg.get("kind")
    if kind == "train":
        spec = cfg.get("spec", {})
        args = ["train", "--dataset", spec.get("dataset") or row["dataset"], "--arch",
                spec.get("arch") or row["arch"]]  # fmt: skip
        if spec.get("activation") not in (None, "relu"):
            args += ["--activation", spec["activation"]]
    elif kind in ("harden", "wrap"):
        args = ["harden", "--model", cfg.get("parent"), "--defense", cfg.get("defense")]
        for key, value in _flatten(cfg.get("params") or {}).items():
            args += ["--param", f"{key}={value}"]
        if cfg.get("from_scratch"):
            args.append("--from-scratch")
        if cfg.get("recipe"):
            args += ["--recipe", cfg["recipe"]]
    else:
        return f"{row['name']}: {kind or 'stored'} model (made by another command)"
    for key, flag in (
        ("epochs", "--epochs"),
        ("batch_size", "--batch-size"),
        ("optimizer", "--optimizer"),
        ("lr", "--lr"),
        ("seed", "--seed"),
    ):
        if cfg.get(key) is not None:
            args += [flag, cfg[key]]  # fmt: skip
    args += ["--name", row["name"]]
    return "advbench " + " ".join(shlex.quote(str(a)) for a in args)


def _provenance(db, run_ids: set[str], ident: str, models: set[str] = frozenset()) -> str:
    runs = _runs_of(db, run_ids)
    kind = "--figure" if ":fig" in ident or ident.endswith(":tsne") else "--table"
    parts = [f"Regenerate: <code>advbench report {kind} {_e(ident)}</code>"]
    names = sorted(set(models) | {r["model"] for r in runs})
    if names:
        marks = ",".join("?" * len(names))
        query = f"select * from models where name in ({marks}) order by created_at"
        rows = [dict(r) for r in db.query(query, names)]
        parts.append("Models from: " + "; ".join(
            f"<code>{_e(model_command(r))}</code> (sha256 {_e((r['checksum'] or '')[:12])})"
            for r in rows))  # fmt: skip
    if not runs and not names:
        parts.append(f"No stored run fills it yet: <code>advbench report --missing {kind} "
                     f"{_e(ident)}</code> prints the commands.")  # fmt: skip
        return "<div class='prov'>" + "<br>".join(parts) + "</div>"
    if not runs:
        return "<div class='prov'>" + "<br>".join(parts) + "</div>"
    parts.append("Runs from: " + "; ".join(f"<code>{_e(c)}</code>" for c in commands(runs)))
    scales = sorted({r["scale"] or "custom" for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    parts.append(f"{len(runs)} runs; scale {', '.join(scales)}; seed {', '.join(map(str, seeds))}")
    envs = sorted({
        f"advbench {r['advbench']}, python {r['python']}, torch {r['torch']}, torchvision "
        f"{r['torchvision']}, foolbox {r['foolbox']}, ART {r['art']}, numpy {r['numpy']} "
        f"({r['device']})" for r in runs if r["advbench"]})  # fmt: skip
    if envs:
        parts.append("Libraries: " + "; ".join(_e(e) for e in envs))
    return "<div class='prov'>" + "<br>".join(parts) + "</div>"


def _table_html(spec: TableSpec, results, db) -> str:
    df = views.pivot(results)
    empty = {(r.row, r.column) for r in results if r.status == "empty"}
    rows = ["<table><thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in df.columns)
            + "</tr></thead><tbody>"]  # fmt: skip
    for values in df.itertuples(index=False):
        row = values[0]
        cells = [f"<th>{_e(row)}</th>"]
        for col, v in zip(df.columns[1:], values[1:], strict=True):
            cls = " class='empty'" if (row, col) in empty else ""
            cells.append(f"<td{cls}>{_e(v)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</tbody></table>")
    caption = "".join(f"<div>{_e(line)}</div>" for line in views.caption(spec, results, db))
    run_ids = {rid for r in results for rid in r.runs}
    models = {r.model for r in results if r.model and r.status != "empty"}
    return (f"<section id='{_anchor(spec.id)}'><h3>{_e(spec.id)}: {_e(spec.title)}</h3>"
            + "".join(rows) + f"<div class='caption'>{caption}</div>"
            + _provenance(db, run_ids, spec.id, models) + "</section>")  # fmt: skip


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure_html(fd, db, ident: str) -> str:
    from advbench.report import drawing

    data = _png(drawing.draw(fd))
    run_ids = {rid for p in fd.panels for s in p.series for pt in s.points
               for rid in pt.result.runs}  # fmt: skip
    models = {pt.result.model for p in fd.panels for s in p.series for pt in s.points
              if pt.result.model and pt.result.status != "empty"}  # fmt: skip
    caption = "".join(f"<div>{_e(line)}</div>" for line in fd.caption)
    notes = "".join(f"<div>{_e(p.panel.title)}: {_e(p.note)}</div>" for p in fd.panels if p.note)
    return (f"<section id='{_anchor(ident)}'><h3>{_e(ident)}: {_e(fd.title)}</h3>"
            f"<img alt='{_e(ident)}' src='data:image/png;base64,{data}'>"
            f"<div class='caption'>{caption}{notes}</div>"
            + _provenance(db, run_ids, ident, models) + "</section>")  # fmt: skip


def _checks_html(db, model: str) -> str:
    from advbench import checks as chk

    runs = chk.gather(db, model)
    verdicts = chk.run(db, model, runs)
    tally = {s: sum(v.status == s for v in verdicts) for s in ("pass", "warn", "fail", "skip")}
    rows = "".join(
        f"<tr><td>{_e(v.check)}</td><td class='{v.status}'>{v.status}</td>"
        f"<td>{_e(v.numbers)}</td><td><code>{_e(v.settle)}</code></td>"
        f"<td>{_e(v.source)}</td></tr>"
        for v in verdicts
    )
    head = ", ".join(f"{k} {n}" for k, n in tally.items())
    return (f"<section id='checks-{_e(model)}'><h3>{_e(model)}: {head} "
            f"({len(runs)} stored runs)</h3><table><thead><tr><th>check</th><th>verdict</th>"
            f"<th>numbers</th><th>to settle</th><th>from</th></tr></thead><tbody>{rows}"
            "</tbody></table></section>")  # fmt: skip


def models_section(db: sqlite_utils.Database, models: list[str]) -> str:
    """The page's first section, about the store in hand: the compact summary of its
    attacked models (up to 4: `report.compact`), their accuracy-against-ε curves,
    optimality, the paired comparison of each pair, and the provenance of their runs. Their
    checklists follow in the checklist section."""
    import pandas as pd

    from advbench.report import figures as figs
    from advbench.report import run_results
    from advbench.report.compact import MOST, compact
    from advbench.report.optimality import CAPTION, optimality_table, render_rows

    shown = models[:MOST]
    view = compact(db, shown)
    head = "".join(f"<th>{_e(h)}</th>" for h in ("norm", "attack", "ε",
                                                  *[letter for letter, _ in view.models]))
    rows = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in (norm, attack, eps, *cells))
                   + "</tr>" for norm, attack, eps, cells in view.rows)  # fmt: skip
    legend = "; ".join(f"{letter} = {name}" for letter, name in view.models)
    more = (f" The store holds {len(models)} attacked models; this section shows the first "
            f"{MOST} (`advbench report --model M ...` picks others)." if len(models) > MOST
            else "")  # fmt: skip
    out = [f"<section id='your-models'><h2>Your models</h2><p class='caption'>{_e(legend)}."
           f"{_e(more)}</p><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
           f"<p class='caption'>{_e(view.caption)}</p>"]  # fmt: skip
    if view.comparisons:
        out.append("<h3>Paired comparisons</h3><ul>" + "".join(
            f"<li>{_e(line)}</li>" for line in view.comparisons) + "</ul>")  # fmt: skip
    fd = figs.curves(db, shown)
    out.append(_figure_html(fd, db, "curves").replace("<section", "<div", 1)
               .replace("</section>", "</div>"))  # fmt: skip
    opt = optimality_table(db, shown)
    if not opt.empty:
        frame: pd.DataFrame = render_rows(opt)
        cols = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
        body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>"
                       for r in frame.itertuples(index=False))  # fmt: skip
        out.append(f"<h3>Minimal attacks: optimality</h3><table><thead><tr>{cols}</tr></thead>"
                   f"<tbody>{body}</tbody></table><p class='caption'>{_e(CAPTION)}</p>")
    ids = set(run_results(db, shown)["id"])
    out.append(_provenance(db, ids, "your-models", set(shown)))
    out.append("</section>")
    return "".join(out)


def page(
    db: sqlite_utils.Database,
    table_specs: list[TableSpec],
    figure_specs: list[FigureSpec],
    *,
    data_dir=None,
    progress=None,
    models: list[str] | None = None,
    title: str = "advbench report",
    preamble: list[str] = (),
    lead: str = "",
) -> str:
    """The page: `lead` (the section about the store's own models) first, then each
    paper's tables and figures, then the checklist of every attacked model."""
    from advbench.report import figures as figs

    store = tab.StoredRuns(db)
    sections: dict[str, list[tuple[str, str, str]]] = {p: [] for p in PAPERS}
    for spec in table_specs:
        results = tab.cells(db, spec, store)
        filled = sum(r.status != "empty" for r in results)
        sections[spec.paper].append((spec.id, f"{spec.title} ({filled}/{len(results)} cells)",
                                     _table_html(spec, results, db)))  # fmt: skip
        if progress:
            progress(spec.id)
    for spec in figure_specs:
        fd = figs.build(db, spec, store, data_dir)
        points = [pt for p in fd.panels for s in p.series for pt in s.points]
        filled = sum(pt.result.status != "empty" for pt in points)
        sections[spec.paper].append((spec.id, f"{spec.title} ({filled}/{len(points)} points)",
                                     _figure_html(fd, db, spec.id)))  # fmt: skip
        if progress:
            progress(spec.id)
    attacked = [r["model"] for r in db.query(
        "select distinct r.model from runs r join models m on m.name = r.model "
        "order by m.created_at")]  # fmt: skip
    if models is not None:
        attacked = [m for m in attacked if m in models]
    checks = [(m, _checks_html(db, m)) for m in attacked]
    nav = ["<nav><h2>Contents</h2>"]
    if lead:
        nav.append("<ul><li><a href='#your-models'>Your models</a></li></ul>")
    for paper, items in sections.items():
        if items:
            nav.append(f"<h4>{_e(paper)}</h4><ul>" + "".join(
                f"<li><a href='#{_anchor(i)}'>{_e(i)}</a>: {_e(t)}</li>" for i, t, _ in items)
                + "</ul>")  # fmt: skip
    if checks:
        links = "".join(f"<li><a href='#checks-{_e(m)}'>{_e(m)}</a></li>" for m, _ in checks)
        nav.append(f"<h4>Evaluation checklist</h4><ul>{links}</ul>")
    nav.append("</nav>")
    body = [lead] if lead else []
    for paper, items in sections.items():
        if items:
            body.append(f"<h2 id='paper-{_e(paper)}'>{_e(paper)}</h2>")
            body += [h for *_, h in items]
    if checks:
        body.append("<h2 id='checklist'>Evaluation checklist</h2><p class='caption'>Carlini et "
                    "al. 2019 and Pintor et al. 2022, on each attacked model's stored runs "
                    "(<code>advbench report --checks MODEL</code>).</p>")  # fmt: skip
        body += [h for _, h in checks]
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    extra = "".join(f"<p class='caption'>{_e(line)}</p>" for line in preamble)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"
            f"<p class='caption'>Generated {stamp} from {_e(_db_file(db))}. Accuracies in % with "
            "the 95 % Wilson interval and n; the papers' numbers beside them.</p>"
            + extra + "".join(nav) + "".join(body) + "</body></html>\n")  # fmt: skip


def _db_file(db) -> str:
    from advbench.store import db_file

    return db_file(db) or "(memory)"
