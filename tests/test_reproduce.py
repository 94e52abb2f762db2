"""`advbench reproduce`: pesso end to end at smoke scale on the embedded MNIST subset (its
CIFAR-10 and ImageNet parts skipped with one line each), every MNIST cell of its tables
filled, the page written, and a second run with nothing left to do. The plan is the one
`report --missing` prints."""

import math
import re
from fnmatch import fnmatchcase

import pytest

from advbench import claims, plans
from advbench.cli import app
from advbench.report import figures as figs
from advbench.report import tables as tab
from advbench.report.papers import figures as all_figures
from advbench.reproduce import specs_of
from advbench.store import open_db


def test_dry_run_lists_the_missing_commands(tmp_path, runner):
    db = str(tmp_path / "r.db")
    res = runner.invoke(app, ["reproduce", "pesso", "--dry-run", "--db", db])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "r.db").exists()  # a dry run writes nothing
    missing = runner.invoke(app, ["report", "--missing", "--table", "pesso", "--db", db])
    figures = runner.invoke(app, ["report", "--missing", "--figure", "pesso", "--db", db])
    text = " ".join(res.output.split())  # rich folds long lines
    planned = {}  # command without its --only rows -> the rows reproduce runs
    for step in re.split(r"to run (?=advbench )", text)[1:]:
        words = step.split(" (≈")[0].split()
        rows = {words[i + 1] for i, w in enumerate(words) if w == "--only"}
        bare = " ".join(w for i, w in enumerate(words)
                        if w != "--only" and (i == 0 or words[i - 1] != "--only"))  # fmt: skip
        planned[bare] = rows or None  # None: every row
    for line in (missing.stdout + figures.stdout).splitlines():
        if line.startswith("advbench "):  # every command of the tables' and figures' plans
            words = line.split()
            rows = {words[i + 1] for i, w in enumerate(words) if w == "--only"}
            bare = " ".join(w for i, w in enumerate(words)
                            if w != "--only" and (i == 0 or words[i - 1] != "--only"))  # fmt: skip
            assert bare in planned, line
            # reproduce plans tables and figures at once: its rows cover each plan's
            assert planned[bare] is None or rows <= planned[bare], line
    assert "skip pesso: CIFAR-10 parts skipped" in text and "ImageNet parts skipped" in text


def test_plans_are_valid_and_name_existing_roles():
    from advbench.report.papers import PAPERS

    for paper in PAPERS:
        plan = plans.load(paper)
        keys = {key for spec in specs_of(paper) for (_, key) in spec.roles}
        for name in plan["models"]:  # a key or a pattern, matching at least one role
            assert any(fnmatchcase(k, name) for k in keys), (paper, name)
    with pytest.raises(Exception, match="unknown key"):
        plans.validate({"paper": "x", "modles": {}}, "test")


def test_bad_input(tmp_path, runner):
    for args, needle in ((["nope"], "unknown paper 'nope'"),
                         (["pesso", "--scale", "huge"], "unknown scale 'huge'"),
                         (["pesso", "--page", "pdf"], "unknown --page 'pdf'")):  # fmt: skip
        res = runner.invoke(app, ["reproduce", *args, "--db", str(tmp_path / "b.db")])
        assert res.exit_code == 2 and needle in res.output, res.output
        assert not (tmp_path / "b.db").exists()
    (tmp_path / "smoke").write_text("not a folder")  # holds the default smoke page folder
    res = runner.invoke(app, ["reproduce", "pesso", "--db", str(tmp_path / "b.db")])
    assert res.exit_code == 2 and "is a file or inside one" in res.output
    assert not (tmp_path / "b.db").exists()


def _movers(db, runs_a, runs_b) -> tuple[int, int]:
    """(robust under a only, under b only) per instance, a cell's worst case over its runs,
    counted over the instances every run of both cells attacked."""

    def robust(runs):
        marks = ", ".join("?" * len(runs))
        rows = db.execute(
            "select idx, count(*), min(clean_pred = label and adv_pred = label) from samples "
            f"where run_id in ({marks}) and not coalesce(init_failed, 0) group by idx", runs
        ).fetchall()
        return {i: r for i, k, r in rows if k == len(runs)}

    a, b = robust(list(runs_a)), robust(list(runs_b))
    shared = set(a) & set(b)
    return sum(a[i] and not b[i] for i in shared), sum(b[i] and not a[i] for i in shared)


def test_pesso_end_to_end_at_smoke(tmp_path, runner):
    db = tmp_path / "r.db"
    (tmp_path / "pesso").mkdir()  # as in a checkout: the reference page beside the store
    (tmp_path / "pesso" / "README.md").write_text("the committed cpu page\n")
    res = runner.invoke(app, ["reproduce", "pesso", "--scale", "smoke", "--db", str(db)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert text.count("parts skipped") == 2  # one line per absent data set: CIFAR-10, ImageNet
    assert "ours-lambda0.05, ours-lambda0.2, ours-lambda0.3 are made only at larger" in text
    store = open_db(db)
    for spec in (s for s in specs_of("pesso") if isinstance(s, tab.TableSpec)):
        for r in tab.cells(store, spec):
            if r.cell.data == "mnist":
                assert r.status != "empty", (spec.id, r.row, r.column, r.why)
    # Table 1's best attack: the worst case over the attacks that ran on every instance,
    # HSJA's (fewer) instances beside it, not n shrunk to HSJA's
    cells = {(r.row, r.column): r for r in tab.cells(store, tab.select("pesso:1")[0])}
    best, pgd = cells[("MNIST ε = 0.3 Ours", "Best attack")], cells[("MNIST ε = 0.3 Ours", "PGD")]
    hsja = cells[("MNIST ε = 0.3 Ours", "HSJA")]
    assert hsja.n < pgd.n and best.n == pgd.n and best.measured <= pgd.measured
    assert "with HSJA too, on the" in best.sample_set and hsja.runs[0] not in best.runs
    # each claim's p recomputed from the sample rows (the binomial sum written out) and
    # Holm's adjustment by hand over the claims that have one
    judged = claims.judge(store, "pesso")
    tested = [c for c in judged if c.test is not None and c.test.f is not None]
    assert tested
    for c in tested:
        f, g = _movers(store, c.a.runs, c.b.runs)
        m = f + g
        p = 1.0 if not m else min(1.0, 2 * sum(math.comb(m, i) for i in range(min(f, g) + 1))
                                  / 2**m)  # fmt: skip
        assert (c.test.f, c.test.g) == (f, g) and c.test.p == pytest.approx(p), c.claim
    # a p that is NaN (seed replicates that all agree exactly) is not a test: not counted
    ps = [c.test.p for c in judged if c.test is not None and c.direction != "degenerate"
          and not math.isnan(c.test.p)]  # fmt: skip
    order = sorted(ps)
    holm = {p: max(min(1.0, (len(ps) - i) * q) for i, q in enumerate(order[: order.index(p) + 1]))
            for p in ps}  # fmt: skip
    for c in judged:
        if c.test is not None and c.direction != "degenerate" and not math.isnan(c.test.p):
            assert c.p_adjusted == pytest.approx(holm[c.test.p])
    # the defense-evidence rows (issue 33): adversarial training against its ε = 0 control
    # on its objective, PGD at ε 0.3, at 3 seeds: each seed's pair recomputed by hand
    # (robust on the control only minus on the defense only, over n), the verdict on the
    # mean over seeds with a t-interval, and Holm over the primary rows alone
    acting = claims.controls(store, "pesso")
    assert {x.quantity for x in acting} == {"PGD (ε = 0.3)"}
    seeds = [x for x in acting if not x.primary]
    (mean,) = [x for x in acting if x.primary]
    assert len(seeds) == 3 and "mean over 3 seeds" in mean.defense
    effects = []
    for x in seeds:
        f, g = _movers(store, x.a.runs, x.control.runs)
        assert (x.test.f, x.test.g) == (f, g)
        effects.append(100 * (f - g) / x.test.n)
    assert mean.test.effect == pytest.approx(sum(effects) / 3)
    assert mean.p_adjusted == (None if math.isnan(mean.test.p) else pytest.approx(mean.test.p))
    assert all(x.p_adjusted is None for x in seeds)
    # the figure's smoke points: λ = 0 (the base) and the paper's λ, not the sweep
    fig3 = figs.build(store, all_figures()["pesso:fig3"])
    mnist = next(p for p in fig3.panels if p.panel.data == "mnist")
    filled = {pt.x for s in mnist.series for pt in s.points if pt.result.status != "empty"}
    assert filled == {0.0, 0.1}
    # a smoke page goes to smoke/PAPER/: the committed cpu page (PAPER/README.md) is untouched
    assert (tmp_path / "pesso" / "README.md").read_text() == "the committed cpu page\n"
    page = (tmp_path / "smoke" / "pesso" / "README.md").read_text()
    assert "### pesso:1" in page and "![pesso:fig3](figures/pesso_fig3.png)" in page
    assert "## Evaluation checklist" in page and "advbench reproduce pesso --scale smoke" in page
    assert (tmp_path / "smoke" / "pesso" / "figures" / "pesso_fig2.png").stat().st_size > 10_000
    # the evidence beside the page regenerates the claims and tables as the store does
    evidence = tmp_path / "smoke" / "pesso" / "evidence.db"
    assert evidence.stat().st_size < sum(p.stat().st_size for p in tmp_path.glob("r.db*"))
    committed = evidence.read_bytes()  # reading it (it is committed) leaves it as it was
    for args in (["--claims", "pesso", "--format", "markdown"],
                 ["--table", "pesso", "--format", "csv"]):  # fmt: skip
        whole = runner.invoke(app, ["report", *args, "--db", str(db)])
        compact = runner.invoke(app, ["report", *args, "--db", str(evidence)])
        assert compact.exit_code == 0 and compact.stdout == whole.stdout and whole.stdout
    assert evidence.read_bytes() == committed
    small = open_db(evidence, create=False)
    assert small.execute("select count(*) from crafted").fetchone()[0] == 0
    assert small.execute("select count(*) from samples where loss_trace is not null"
                         ).fetchone()[0] == 0  # fmt: skip
    runs = store.execute("select count(*) from runs").fetchone()[0]
    again = runner.invoke(app, ["reproduce", "pesso", "--scale", "smoke", "--db", str(db)])
    assert again.exit_code == 0 and "0 steps" in again.output
    assert store.execute("select count(*) from runs").fetchone()[0] == runs
    listing = runner.invoke(app, ["report", "--missing", "--table", "pesso", "--db", str(db)])
    assert not [line for line in listing.stdout.splitlines() if line.startswith("advbench ")]
    # the sweep's empty points are not silent: --missing names the scale that makes them
    later = runner.invoke(app, ["report", "--missing", "--figure", "pesso:fig3", "--db", str(db)])
    assert (
        "# pesso:fig3: models ours-lambda0.05, ours-lambda0.2, ours-lambda0.3 are made only "
        "at larger scales than smoke" in later.stdout
    )


def test_a_failing_step_stops_the_run_with_its_exit_code(tmp_path, runner, monkeypatch):
    """A step that is refused (exit 2) must not be counted as done: a long reproduce whose
    store was migrated by a newer advbench mid-run once went on to its page as if every
    step had run."""
    from advbench import reproduce
    from advbench.reproduce import Plan, PlannedStep
    from advbench.steps import Step

    db = tmp_path / "a.db"
    ghost = Step("attack", {"model": ["ghost"], "attack": "fgsm", "eps": [0.1], "db": db})
    train = Step("train", {"dataset": "digits", "name": "never", "epochs": 1, "db": db})
    monkeypatch.setattr(reproduce, "plan", lambda *a, **k: Plan(
        "fidel", "smoke", [PlannedStep(ghost), PlannedStep(train)]))  # fmt: skip
    res = runner.invoke(app, ["reproduce", "fidel", "--db", str(db)])
    assert res.exit_code == 2 and "unknown model 'ghost'" in res.output, res.output
    text = " ".join(res.output.split())
    assert "[fidel 1/2] advbench attack --model ghost" in text
    assert "[fidel 2/2]" not in text  # the second step never started
    assert open_db(db)["models"].count == 0 and not (tmp_path / "smoke").exists()


def test_only_the_reference_scale_writes_beside_the_store(tmp_path):
    """results/PAPER/ holds the committed cpu pages; every other scale has its own folder."""
    from advbench.reproduce import default_output

    db = tmp_path / "advbench.db"
    assert default_output(db, "fidel", "cpu") == tmp_path / "fidel"
    assert default_output(db, "fidel", "smoke") == tmp_path / "smoke" / "fidel"
    assert default_output(db, "fidel", "full") == tmp_path / "full" / "fidel"
