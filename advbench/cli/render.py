"""How the commands print what the API returns: models, attack summaries, plans, listings."""

from __future__ import annotations

import json
import sys

from rich.markup import escape
from rich.table import Table

from advbench import api
from advbench.cli.app import err, out


def print_model(stored) -> None:
    """A stored model (catalogue.StoredModel) in one line, with its clean accuracy's interval."""
    row, (lo, hi) = stored.row, stored.clean_interval
    verb = "stored" if stored.created else "already stored (no work done; --force to retrain)"
    out.print(
        f"Model [bold]{row['name']}[/] {verb}: {row['arch']} on {row['dataset']}, "
        f"clean accuracy {row['clean_accuracy'] * 100:.2f} % "
        f"(95 % CI {lo * 100:.1f}–{hi * 100:.1f}, n={row['clean_n']} test samples, "
        f"seed {row['seed']}), sha256 {row['checksum'][:12]}"
    )


def list_registry(registry, title: str, columns: list[str]) -> None:
    table = Table(title=title)
    for c in ["name", *columns, "parameters (defaults)", "description"]:
        table.add_column(c, no_wrap=c == "name")  # names are copied into commands whole
    for e in registry:
        params = ", ".join(f"{p.name}={p.default}" for p in e.params) or "—"
        table.add_row(e.name, *[str(e.meta.get(c, "")) for c in columns], params, e.help)
    out.print(table)


def print_hardened(stored, defense: str) -> None:
    print_model(stored)
    config = json.loads(stored.row["config"])
    how = {"wrap": "wrapped (inference-time, nothing trained)"}.get(config.get("kind"), "")
    if config.get("from_scratch"):
        how = "trained from scratch"
    out.print(
        f"  parent {stored.row['parent']}, defense {defense} "
        f"{json.loads(stored.row['defense_config'])} {how}"
    )
    for rec in config.get("lambda_search", []):
        tried = ", ".join(f"{t['lambda']:.4g}{'' if t['ok'] else ' ✗'}" for t in rec["trials"])
        failed = "" if all(t["ok"] for t in rec["trials"]) else " (✗: CE reached"
        failed += f" ln C = {rec['threshold_ce']:.3f})" if failed else ""
        out.print(
            f"  {rec['component']}.{rec['param']}=auto: R0 {rec['r0']:.4g} over "
            f"{rec['r0_batches']} batches, λ0 {rec['lambda0']:.4g}, one-epoch trials "
            f"{tried}{failed} → {rec['chosen']:.4g}"
        )


def print_summaries(summaries, model_row, seed, scale) -> None:
    """One row per attack row (label, threat model, n), its ε values stacked in one cell."""
    table = Table(
        title=f"{model_row['name']} (defense: {model_row['defense'] or 'none'}, "
        f"sha256 {model_row['checksum'][:12]}) — seed {seed}, scale {scale}"
        + "".join(sorted({f", {s.gradient} gradient" for s in summaries if s.gradient})),
        caption="robust accuracy % of n instances, [95 % Wilson interval]",
    )
    threats = any(s.threat != "white-box" or s.targeted for s in summaries)
    for c in ["attack", "threat", "n", "ε: robust accuracy %", "time s", "status"]:
        if c == "threat" and not threats:
            continue
        table.add_column(
            c,
            justify="right" if c in ("n", "time s") else "left",
            no_wrap=c in ("ε: robust accuracy %", "status"),
        )
    groups: dict[tuple, list] = {}
    for s in summaries:
        groups.setdefault((s.label or s.attack, s.threat, s.targeted, s.n), []).append(s)
    for (label, threat, targeted, n), runs in groups.items():
        cells = []
        for r in runs:
            lo, hi = r.interval
            if not r.n:
                cells.append(f"{r.eps:g}: no start ({r.init_failed} failed)")
                continue
            cells.append(f"{r.eps:g}: {r.accuracy * 100:.1f} [{lo * 100:.1f}–{hi * 100:.1f}]")
        statuses = {"stored (no work)" if r.reused else r.status for r in runs}
        table.add_row(
            escape(label),  # a label is text, not rich markup
            *([threat + (f"\ntargeted {targeted}" if targeted else "")] if threats else []),
            str(n),
            "\n".join(cells),
            f"{max(r.wall_s for r in runs):.1f}",
            ", ".join(sorted(statuses)),
        )
    out.print(table)
    seen = set()
    for s in summaries:
        if s.init_failed and (s.label or s.attack) not in seen:
            seen.add(s.label or s.attack)
            out.print(
                f"  note: {escape(s.label or s.attack)}: {s.init_failed} instance(s) had no "
                "starting adversarial (the attack could not start); left out of n, not counted "
                "robust"
            )


def print_model_result(result) -> None:
    """One model's runs of an attack command (api.ModelResult)."""
    print_summaries(result.summaries, result.row, result.seed, result.scale)
    for note in result.notes:
        out.print(f"  note: {note}")


def print_measured(models: list[str], metric: str, rows) -> None:
    for name, row in zip(models, rows, strict=True):
        out.print(f"{name}: {metric} = {row['value']:.6g} ({api.measure_text(row)}; "
                  f"n={row['n']})", highlight=False)  # fmt: skip


def print_step(step, outcome) -> None:
    """What a plan step's own command prints of its outcome."""
    if step.kind == "train":
        print_model(outcome)
    elif step.kind == "harden":
        print_hardened(outcome, step.args["defense"])
    elif step.kind == "attack":  # one model's result (api.ModelResult), as it completes
        print_model_result(outcome)
    else:
        print_measured(step.args["models"], step.args["metric"], outcome)


def print_plan(plan_) -> None:
    from advbench.progress import fmt_time

    out.print(f"[bold]{plan_.paper}[/] at scale {plan_.scale}: {len(plan_.stored)} models "
              f"stored, {len(plan_.steps)} steps to run")  # fmt: skip
    for name in plan_.stored:
        out.print(f"  stored  {name}", highlight=False, markup=False)
    total = 0.0
    for step in plan_.steps:
        runs = f"{step.runs} runs, " if step.runs is not None else ""
        total += abs(step.estimate_s or 0)
        out.print(f"  to run  {step.text}  ({runs}≈ {fmt_time(step.estimate_s)})",
                  highlight=False, markup=False)  # fmt: skip
    out.print(f"  estimate of the timed steps: {fmt_time(total)}; ? has no stored timing yet",
              highlight=False)  # fmt: skip


def print_listing(rows, figure_rows=()) -> None:
    for title, items in (
        ("Paper tables (cells filled by stored runs / cells)", rows),
        ("Paper figures (points filled by stored runs / points)", figure_rows),
    ):
        if not items:
            continue
        t = Table(title=title)
        for c in ("id", "shows", "filled"):
            t.add_column(c, no_wrap=c == "id")
        for tid, what, filled, total in items:
            t.add_row(tid, what, f"{filled}/{total}")
        out.print(t)
    out.print("`advbench report --missing --table ID` (or --figure ID) prints the commands "
              "that fill a table (a figure).")  # fmt: skip


CHECK_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def print_output(done) -> None:
    """A report mode's text on stdout, and a line on stderr per file it wrote."""
    if done.text is not None:
        sys.stdout.write(done.text)
    for path in done.written:
        err.print(f"wrote {path}", highlight=False)


def print_table(view, verbose: bool = False) -> None:
    from advbench.report.table_views import print_rich

    print_rich(out, view, verbose)


def print_summary(view) -> None:
    """The compact summary (report.compact) where it fits, else one table per attack."""
    from advbench.report import print_summary as rich_summary
    from advbench.report.compact import Compact, print_compact

    if isinstance(view, Compact):
        print_compact(out, view)
    else:
        rich_summary(out, view)


def print_checks(view) -> None:
    t = Table(title=view.head, title_justify="left", show_lines=True)
    for c in ("check", "verdict", "numbers", "to settle"):
        t.add_column(c, overflow="fold", no_wrap=c in ("check", "verdict"))
    for v in view.verdicts:
        t.add_row(v.check, f"[{CHECK_STYLE[v.status]}]{v.status}[/]", v.numbers, v.settle)
    out.print(t)


def claims_markdown(found) -> str:
    from advbench.claims import markdown

    return markdown(found)


def print_claims(found) -> None:
    from advbench.claims import show

    t = Table(title="Claims decided on paired evidence (a − b on the instances both cells "
              "hold; p Holm-adjusted per paper)", show_lines=True)  # fmt: skip
    for col in ("paper", "claim", "direction; size", "measured a; b", "how"):
        t.add_column(col, overflow="fold")
    for c in found:
        measured = f"{show(c.a)};\n{show(c.b)}" if c.a and c.b else "—"
        if c.control is not None:
            measured += f";\ncontrol {show(c.control)}"
        how = c.detail + (f". Note: {c.note}" if c.note else "")
        t.add_row(c.paper, c.claim, c.verdict, measured, how)
    out.print(t)
    from advbench.claims import tally

    out.print(tally(found), highlight=False)


def print_comparison(found) -> None:
    """`report --compare A B` in the terminal: one row per attack and ε."""
    from advbench.report.compare import HEADER, cells

    t = Table(title=found.caption(), title_justify="left")
    for h in HEADER:
        t.add_column(h, overflow="fold", justify="left" if h == "attack" else "right")
    for row in cells(found):
        t.add_row(*row)
    out.print(t)
    if found.unshared:
        out.print("Rows both ran on no common instance: " + "; ".join(found.unshared),
                  highlight=False)  # fmt: skip


def print_missing(todo, scale: str) -> None:
    """`report --missing`: the commands on stdout (a script), the rest as comments."""
    for cmd in todo.commands():
        sys.stdout.write(cmd + "\n")
    for line in [*todo.absent, *todo.later(scale)]:
        sys.stdout.write(f"# {line}\n")
    later = f"; {len(todo.not_planned)} need --scale cpu or full" if todo.not_planned else ""
    err.print(
        f"{len(todo.commands())} commands at scale {scale} (training epochs from the "
        f"papers' plans, benchmarks/plans/); {len(todo.absent)} cells need a data set "
        f"that is not on disk{later}.",
        highlight=False,
    )


def print_figure(fd) -> None:
    for line in fd.caption:
        out.print(line, highlight=False, markup=False)
    for pd_ in fd.panels:
        if pd_.note:
            out.print(f"  {pd_.panel.title}: {pd_.note}", highlight=False, markup=False)
