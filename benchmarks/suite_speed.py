"""Suite speed: a suite's plain plan against its optimised plan, in one process.

Both plans attack the same stored model on the same samples with the same seeds, each in
its own copy of the store (so neither reuses the other's runs). Per suite row it prints the
forward+backward passes per instance, wall time, robust accuracy per ε of each plan and
their ratios, and every instance whose outcome differs between them. A shortcut may only
turn a robust instance into a broken one, never the reverse: such a reversal is listed
under "never-weaker violations". Targets (issue 14): on `carlini-eval --scale cpu`, at
least 2x fewer passes and 1.8x less wall time in total, no violation, and every accuracy
within the plain plan's 95 % interval.

    python benchmarks/suite_speed.py [--suite carlini-eval] [--scale cpu] [--n N]
        [--model NAME --db results/advbench.db] [--output benchmarks/suite_speed.md]
        [--cascade]

With --cascade it also runs the suite as one cascade (`attack --cascade`) in a third copy
of the store and compares its worst case per (norm, ε) with the per-sample worst case of
each of the two row-by-row plans, and its total passes with theirs (issue 14's cascade
target: the same worst case at a fraction of the passes).

Without --model it trains a madry-mnist on mnist-5k for 3 epochs (seed 0) in a scratch
store. The optimised plan is what `advbench attack` does by default; the plain plan is
`--no-shortcuts`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from advbench import api
from advbench.env import describe
from advbench.metrics import wilson_interval
from advbench.store import open_db
from advbench.suites import labels, load_suite
from advbench.train import train_model


def scratch_store(db: Path | None, model: str | None) -> tuple[Path, str]:
    """A scratch store holding just the model to attack (a copy: the source is not touched)."""
    folder = Path(tempfile.mkdtemp(prefix="advbench-suite-speed-"))
    if model is None:
        store = open_db(folder / "a.db")
        row = train_model(store, name="bench-madry", dataset="mnist-5k", arch="madry-mnist",
                          epochs=3, batch_size=64, optimizer="adam", lr=1e-3,
                          weight_decay=0.0, seed=0, device="cpu")  # fmt: skip
        store.close()
        return folder / "a.db", row.name
    src = open_db(db)
    dst = open_db(folder / "a.db")
    row = src["models"].get(model)
    env = src["environments"].get(row["env_id"]) if row["env_id"] else None
    if env:
        dst["environments"].insert(env, pk="id", ignore=True)
    dst["models"].insert(row, pk="name")
    (folder / "models").mkdir()
    for suffix in (".safetensors", ".json"):  # the checkpoint and its metadata
        shutil.copy(Path(db).parent / (row["path"] + suffix), folder / (row["path"] + suffix))
    return folder / "a.db", model


def _rows(db, run_id: str) -> list[dict]:
    """A run's per-instance rows, each with the run's norm."""
    return list(db.query(
        "select s.position, s.idx, s.success, s.fwd, s.bwd, s.clean_pred, s.label, s.adv_pred, "
        "s.l2, s.linf, s.carried_from, r.norm from samples s join runs r on r.id = s.run_id "
        "where s.run_id = ?", [run_id]))  # fmt: skip


def plan(db_path: Path, model: str, suite: str, scale: str, n, shortcuts: bool) -> dict:
    """Run the suite row by row; per row its wall time, runs and per-instance outcomes."""
    out = {}
    for label in labels(load_suite(suite)):
        t0 = time.perf_counter()
        ev = api.evaluate(model, suite=suite, only=[label], scale=scale, n=n, device="cpu",
                          shortcuts=shortcuts, db=db_path)  # fmt: skip
        wall = time.perf_counter() - t0
        db = open_db(db_path)
        runs = []
        for s in [s for r in ev.results for s in r.summaries]:
            rows = _rows(db, s.id)
            runs.append((s, rows))
        kind = runs[0][0].attack if runs else None
        out[label] = {"wall": wall, "runs": runs, "kind": kind}
        db.close()
    return out


def passes(runs) -> float:
    """Forward+backward passes per instance of a row: a minimal attack's one search is
    recorded on each of its ε runs, so it is counted once."""
    from advbench.attacks import ATTACKS

    if not runs:
        return 0.0
    s0, rows0 = runs[0]
    if ATTACKS.get(s0.attack).meta["kind"] == "minimal":
        return sum(r["fwd"] + r["bwd"] for r in rows0) / max(len(rows0), 1)
    total = sum(r["fwd"] + r["bwd"] for _, rows in runs for r in rows)
    return total / max(len(rows0), 1)


def compare(plain: dict, fast: dict) -> tuple[list[str], int, int, list[str]]:
    lines, violations, gained, outside = [], 0, 0, []
    lines.append("| row | passes/instance plain | optimised | ratio | wall s plain | optimised "
                 "| ratio | robust accuracy per ε: plain → optimised |")  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|---|")
    total = {"pp": 0.0, "pf": 0.0, "wp": 0.0, "wf": 0.0}
    diffs = []
    for label in plain:
        p, f = plain[label], fast[label]
        pp, pf = passes(p["runs"]), passes(f["runs"])
        total["pp"] += pp
        total["pf"] += pf
        total["wp"] += p["wall"]
        total["wf"] += f["wall"]
        accs = []
        for (sp, rp), (sf, rf) in zip(p["runs"], f["runs"], strict=True):
            lo, hi = wilson_interval(sp.robust, sp.n)
            acc_p, acc_f = sp.robust / sp.n * 100, sf.robust / sf.n * 100
            flag = "" if lo * 100 - 1e-9 <= acc_f <= hi * 100 + 1e-9 else " (outside)"
            if flag:
                outside.append(f"{label} ε={sp.eps:g}: {acc_p:.1f} → {acc_f:.1f}")
            accs.append(f"{sp.eps:g}: {acc_p:.1f} → {acc_f:.1f}{flag}")
            a = {r["position"]: r for r in rp}
            b = {r["position"]: r for r in rf}
            for pos in sorted(a):
                ra, rb = a[pos], b.get(pos)
                if rb is None or ra["success"] == rb["success"]:
                    continue
                if ra["success"] and not rb["success"]:
                    violations += 1
                    diffs.append(f"- VIOLATION {label} ε={sp.eps:g} position {pos}: broken by "
                                 "the plain plan, robust under shortcuts")  # fmt: skip
                else:
                    gained += 1
                    diffs.append(f"- {label} ε={sp.eps:g} position {pos}: robust under the "
                                 "plain plan, broken under shortcuts")  # fmt: skip
        ratio_p = pp / pf if pf else float("nan")
        ratio_w = p["wall"] / f["wall"] if f["wall"] else float("nan")
        lines.append(f"| {label} | {pp:.1f} | {pf:.1f} | {ratio_p:.2f}x | {p['wall']:.1f} | "
                     f"{f['wall']:.1f} | {ratio_w:.2f}x | {'; '.join(accs)} |")  # fmt: skip
    lines.append(f"| **total** | {total['pp']:.0f} | {total['pf']:.0f} | "
                 f"{total['pp'] / total['pf']:.2f}x | {total['wp']:.0f} | {total['wf']:.0f} | "
                 f"{total['wp'] / total['wf']:.2f}x | |")  # fmt: skip
    return lines, violations, gained, diffs + [f"- outside the plain interval: {o}"
                                               for o in outside]  # fmt: skip


def total_passes(runs) -> float:
    """All forward+backward passes of a row's runs, over every instance it attacked: a
    minimal attack's search counted once per instance (the largest any ε run records: in a
    cascade an instance carried at one ε records none there)."""
    from advbench.attacks import ATTACKS

    if not runs:
        return 0.0
    if ATTACKS.get(runs[0][0].attack).meta["kind"] == "minimal":
        most: dict[int, float] = {}
        for _, rows in runs:
            for r in rows:
                most[r["position"]] = max(most.get(r["position"], 0.0), r["fwd"] + r["bwd"])
        return sum(most.values())
    return sum(r["fwd"] + r["bwd"] for _, rows in runs for r in rows)


def worst_case(plan_runs: dict) -> dict[tuple[str, float], tuple[set[int], set[int]]]:
    """Per (norm, ε) of the untargeted runs: (test indexes attacked, those some run broke
    within ε). A break at a smaller ε, or by an example whose distance is within ε, counts:
    the example lies in the ball."""
    by_norm: dict[str, list] = {}
    for row in plan_runs.values():
        for s, rows in row["runs"]:
            norm = rows[0]["norm"] if rows else None
            if s.targeted is None and norm in ("l2", "linf"):  # L0 is stored as a count
                by_norm.setdefault(norm, []).append((s, rows))
    out = {}
    for norm, runs in by_norm.items():
        for eps in sorted({s.eps for s, _ in runs}):
            seen = {r["idx"] for s, rows in runs if s.eps == eps for r in rows}
            broken = {r["idx"] for _, rows in runs for r in rows
                      if r["success"] and r[norm] <= eps * (1 + 1e-5)}  # fmt: skip
            out[(norm, eps)] = (seen, broken & seen)
    return out


def cascade_section(plain: dict, fast: dict, cascade: dict, wall: float) -> list[str]:
    """The cascade's worst case per (norm, ε) against each row-by-row plan's per-sample
    worst case, and its passes against theirs."""
    ref = {"plain": worst_case(plain), "shortcuts": worst_case(fast)}
    mine = worst_case(cascade)
    lines = ["## Cascade (`attack --cascade`) against the per-sample worst case", "",
             "| norm | ε | n | worst-case accuracy %: plain plan | shortcuts | cascade | "
             "instances that differ (cascade vs plain: broken only by cascade / only by "
             "plain) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for key in sorted(mine):
        seen, broken = mine[key]
        cells = []
        for name in ("plain", "shortcuts"):
            s2, b2 = ref[name].get(key, (set(), set()))
            cells.append(f"{(1 - len(b2) / len(s2)) * 100:.1f}" if s2 else "—")
        _, bp = ref["plain"].get(key, (set(), set()))
        only_c, only_p = len(broken - bp), len(bp - broken)
        acc = (1 - len(broken) / len(seen)) * 100
        lines.append(f"| {key[0]} | {key[1]:g} | {len(seen)} | {cells[0]} | {cells[1]} | "
                     f"{acc:.1f} | {only_c} / {only_p} |")  # fmt: skip
    totals = {name: sum(total_passes(r["runs"]) for r in plan.values())
              for name, plan in (("plain", plain), ("shortcuts", fast),
                                 ("cascade", cascade))}  # fmt: skip
    lines += ["", f"Total passes over every attacked instance: plain plan {totals['plain']:,.0f}, "
              f"shortcuts {totals['shortcuts']:,.0f}, cascade {totals['cascade']:,.0f} "
              f"({totals['cascade'] / totals['plain']:.2f} of the plain plan's, "
              f"{totals['cascade'] / totals['shortcuts']:.2f} of the shortcuts'); cascade "
              f"wall {wall:.0f} s.", ""]  # fmt: skip
    lines += ["| row (cascade order) | passes | attacked instances |", "|---|---|---|"]
    for label, row in cascade.items():
        attacked = {r["position"] for _, rows in row["runs"] for r in rows
                    if r["carried_from"] is None}  # fmt: skip
        lines.append(f"| {label} | {total_passes(row['runs']):,.0f} | {len(attacked)} |")
    return lines + [""]


def cascade_plan(db_path: Path, model: str, suite: str, scale: str, n) -> tuple[dict, float]:
    """The suite as one cascade; per row (cascade order) its runs and per-instance rows."""
    t0 = time.perf_counter()
    ev = api.evaluate(model, suite=suite, scale=scale, n=n, device="cpu", cascade=True,
                      db=db_path)  # fmt: skip
    wall = time.perf_counter() - t0
    db = open_db(db_path)
    out: dict = {}
    for s in [s for r in ev.results for s in r.summaries]:
        rows = _rows(db, s.id)
        out.setdefault(s.label, {"runs": [], "wall": 0.0})["runs"].append((s, rows))
    db.close()
    return out, wall


def bound_lines(plain: dict, fast: dict) -> list[str]:
    """How far the never-weaker shortcuts can go: the passes of the rows they cannot cut
    short (minimal attacks, whose per-instance norms the optimality table reads, at what
    the optimised plan spends on them, and transfer rows, which keep every step) against
    the plain plan's total."""
    from advbench.attacks import ATTACKS

    total = sum(total_passes(r["runs"]) for r in plain.values())
    fixed = sum(
        total_passes(r["runs"])
        for r in fast.values()
        if r["runs"]
        and (ATTACKS.get(r["runs"][0][0].attack).meta["kind"] == "minimal"
             or r["runs"][0][0].threat != "white-box")
    )  # fmt: skip
    if not fixed or not total:
        return []
    return [
        "## How far shortcuts can go on this suite", "",
        f"The minimal attacks (their search yields each instance's norm, which the optimality "
        f"table reads, so it cannot stop early; DeepFool only drops the instances it has "
        f"finished) and the transfer rows (their examples must fool the target, so they keep "
        f"every step) spend {fixed:,.0f} passes in the optimised plan, of the plain plan's "
        f"{total:,.0f} over all attacked instances ({fixed / total:.0%}). Were every "
        f"white-box budget row free, the plan would need {total / fixed:.2f}x fewer passes: "
        "a shortcut that is never weaker cannot reach 2x here. A cascade (--cascade) saves "
        "on those rows too, since the expensive searches attack only what the cheap rows "
        "left robust.", "",
    ]  # fmt: skip


PAIRS = (("FMN-Linf", "PGD-Linf"), ("FMN-L2", "PGD-L2"))


def minimal_vs_budget(runs: dict) -> list[str]:
    """Each FMN curve (one minimal search judged at every ε) against PGD's budget runs on
    the same instances, from the optimised plan: accuracy per ε and the instances only one
    of them broke."""
    lines = []
    for fmn, pgd in PAIRS:
        if fmn not in runs or pgd not in runs:
            continue
        by_eps = {s.eps: (s, rows) for s, rows in runs[pgd]["runs"]}
        lines += [f"### {fmn} against {pgd}", "",
                  "| ε | FMN accuracy % | PGD accuracy % | broken only by FMN | only by PGD |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for s, rows in runs[fmn]["runs"]:
            if s.eps not in by_eps:
                continue
            p, prow = by_eps[s.eps]
            a = {r["position"]: r["success"] for r in rows}
            b = {r["position"]: r["success"] for r in prow}
            only_f = sum(1 for k in a if a[k] and not b.get(k, 0))
            only_p = sum(1 for k in b if b[k] and not a.get(k, 0))
            acc_f, acc_p = s.robust / s.n * 100, p.robust / p.n * 100
            lines.append(f"| {s.eps:g} | {acc_f:.1f} (n={s.n}) | {acc_p:.1f} (n={p.n}) | "
                         f"{only_f} | {only_p} |")  # fmt: skip
        fp, pp = passes(runs[fmn]["runs"]), passes(runs[pgd]["runs"])
        budgets = len(runs[pgd]["runs"])
        lines += ["", f"Passes per instance: {fmn} {fp:.0f} for the whole curve, {pgd} "
                  f"{pp:.0f} over its {budgets} budgets.", ""]  # fmt: skip
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="carlini-eval")
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--db", type=Path, default=Path("results/advbench.db"))
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--cascade", action="store_true", help="also run the suite as a cascade")
    args = ap.parse_args()
    base, model = scratch_store(args.db, args.model)
    plain_db = base.parent / "plain" / "a.db"
    shutil.copytree(base.parent, plain_db.parent, ignore=shutil.ignore_patterns("plain"))
    warm_db = base.parent / "warm" / "a.db"  # first calls (imports, data) timed in neither
    shutil.copytree(base.parent, warm_db.parent, ignore=shutil.ignore_patterns("plain", "warm"))
    cascade_db = base.parent / "cascade" / "a.db"
    shutil.copytree(base.parent, cascade_db.parent,
                    ignore=shutil.ignore_patterns("plain", "warm", "cascade"))  # fmt: skip
    api.evaluate(model, suite=args.suite, only=[labels(load_suite(args.suite))[0]],
                 scale="smoke", n=4, device="cpu", db=warm_db)  # fmt: skip
    t0 = time.perf_counter()
    plain = plan(plain_db, model, args.suite, args.scale, args.n, shortcuts=False)
    fast = plan(base, model, args.suite, args.scale, args.n, shortcuts=True)
    lines, violations, gained, diffs = compare(plain, fast)
    env = describe("cpu")
    head = [
        f"# Suite speed: {args.suite} at {args.scale} scale, plain plan vs shortcuts",
        "",
        f"- Command: `python benchmarks/suite_speed.py --suite {args.suite} --scale "
        f"{args.scale}"
        + (f" --n {args.n}" if args.n else "")
        + (" --cascade" if args.cascade else "")
        + "`",
        f"- Model: {model}; machine: {env['platform']}, torch {env['torch']}, "
        f"advbench {env['advbench']} ({env['git_commit']}); both plans in one process, "
        f"{time.perf_counter() - t0:.0f} s in all",
        f"- Never-weaker violations (broken by the plain plan, robust under shortcuts): "
        f"{violations}; instances broken only under shortcuts: {gained}",
        "",
    ]
    curves = minimal_vs_budget(fast)
    extra = ["## Minimal against budget attacks", "", *curves] if curves else []
    extra += bound_lines(plain, fast)
    if args.cascade:
        cascade, wall = cascade_plan(cascade_db, model, args.suite, args.scale, args.n)
        extra += cascade_section(plain, fast, cascade, wall)
    text = "\n".join([*head, *lines, "", "## Instances whose outcome differs", "",
                      *(diffs or ["- none"]), "", *extra])  # fmt: skip
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
