"""Reported cells from known data: a store filled with hand-made sample rows, whose robust
accuracy, n, interval, ρ̂_adv, worst case over attacks and table cells are worked out by
hand here (the interval by scipy's Wilson interval), never read back from the code.

The hand-made instances (label y, clean prediction, adversarial prediction), for model m:
  FGSM white-box ε 0.1 (latest): 6 robust, 2 broken, 1 clean error that stays wrong,
      1 clean error the attack's output lands back on y → robust 6 of 10 (a clean error
      is never robust).
  FGSM white-box ε 0.1 (older run of the same cell): all 10 robust → must not be shown.
  FGSM transfer ε 0.1 from the root: 9 robust, 1 broken → its own cell, 9 of 10.
  PGD targeted (random) ε 0.1: 4 reach the target, 2 miss it but leave y, 4 robust → 4/10.
  PGD white-box ε 0.1: breaks instances 0-2 and 6 (FGSM's first broken one), 8-9 are the
      clean errors → robust 3, 4, 5, 7 = 4 of 10; worst case with FGSM (robust 0-5):
      robust in both = instances 3, 4, 5 → 3 of 10.
  HSJ ε 1: 2 failed starts, of the 8 others 5 robust → 5 of 8, 2 failed.
  DeepFool: d = 0.5, 1.0 on ‖x‖ = 5, 4; one failure; one clean error (d 0)
      → ρ̂ = (0.1 + 0.25) / 2 = 0.175 over N = 2.
"""

import pytest
from scipy.stats import binomtest

from advbench.engine import summarise
from advbench.metrics import mean_interval
from advbench.report import rho_adv, rho_adv_values, run_results, summary_table, worst_case
from advbench.store import open_db


def wilson(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low, ci.high


def _run(db, rid, attack, eps, finished, **kw):
    row = {
        "id": rid,
        "model": "m",
        "model_checksum": "c" * 64,
        "attack": attack,
        "label": kw.pop("label", None),
        "norm": kw.pop("norm", "linf"),
        "kind": kw.pop("kind", "budget"),
        "eps": eps,
        "config": "{}",
        "dataset": "digits",
        "split": "test",
        "n": 10,
        "seed": 0,
        "scale": "smoke",
        "status": "complete",
        "finished_at": finished,
        "threat": "white-box",
        **kw,
    }
    db["runs"].insert(row)


def _samples(db, rid, triples, **cols):
    rows = []
    for i, (y, clean, adv) in enumerate(triples):
        row = {"run_id": rid, "idx": 100 + i, "position": i, "label": y, "clean_pred": clean}
        row.update(adv_pred=adv, success=int(adv != y), l2=0.0, x_l2=1.0, eps=0.1)
        row.update({k: v[i] for k, v in cols.items()})
        rows.append(row)
    db["samples"].insert_all(rows, pk=("run_id", "position"))


@pytest.fixture
def known(tmp_path):
    db = open_db(tmp_path / "k.db")
    db["models"].insert_all(
        [
            {"name": "m", "checksum": "c" * 64, "arch": "a", "dataset": "digits",
             "defense": "jacobian", "clean_accuracy": 0.8, "clean_n": 10, "created_at": "1"},
            {"name": "root", "checksum": "r" * 64, "arch": "a", "dataset": "digits",
             "defense": None, "clean_accuracy": 0.9, "clean_n": 10, "created_at": "0"},
        ]
    )  # fmt: skip
    y = [3] * 10
    fgsm = [(3, 3, 3)] * 6 + [(3, 3, 4), (3, 3, 5), (3, 7, 7), (3, 7, 3)]
    _run(db, "fgsm-new", "fgsm", 0.1, "2026-01-02", label="FGSM")
    _samples(db, "fgsm-new", fgsm)
    _run(db, "fgsm-old", "fgsm", 0.1, "2026-01-01", label="FGSM")
    _samples(db, "fgsm-old", [(3, 3, 3)] * 10)
    _run(db, "fgsm-tr", "fgsm", 0.1, "2026-01-02", label="FGSM", threat="transfer",
         source_model="root", source_rule="root")  # fmt: skip
    _samples(db, "fgsm-tr", [(3, 3, 3)] * 9 + [(3, 3, 1)])
    targets = [5] * 10
    pgd_t = [(3, 3, 5)] * 4 + [(3, 3, 8)] * 2 + [(3, 3, 3)] * 4
    _run(db, "pgd-t", "pgd-linf", 0.1, "2026-01-02", label="PGD", targeted="random")
    _samples(db, "pgd-t", pgd_t, target=targets)
    pgd = [(3, 3, 0)] * 3 + [(3, 3, 3)] * 3 + [(3, 3, 0)] + [(3, 3, 3)] + [(3, 7, 7)] * 2
    _run(db, "pgd", "pgd-linf", 0.1, "2026-01-02", label="PGD")
    _samples(db, "pgd", pgd)
    hsj = [(3, 3, 3)] * 5 + [(3, 3, 2)] * 3 + [(3, 3, 3)] * 2
    _run(db, "hsj", "hsj", 1.0, "2026-01-02", label="HSJ", norm="l2", kind="minimal")
    _samples(db, "hsj", hsj, init_failed=[0] * 8 + [1] * 2)
    df = [(3, 3, 4), (3, 3, 4), (3, 3, 3), (3, 6, 6)] + [(3, 3, 3)] * 6
    _run(db, "df", "deepfool-l2", 1.0, "2026-01-02", label="DeepFool", norm="l2", kind="minimal")
    _samples(db, "df", df, min_norm=[0.5, 1.0, None, 0.0] + [None] * 6,
             x_l2=[5.0, 4.0, 3.0, 2.0] + [1.0] * 6)  # fmt: skip
    assert len(y) == 10
    return db


def test_run_accuracies_n_and_intervals_from_known_rows(known):
    runs = run_results(known).set_index("attack")
    want = {  # cell label → (robust, n, failed starts)
        "FGSM": (6, 10, 0),
        "FGSM [transfer] ← root": (9, 10, 0),
        "PGD (targeted random)": (4, 10, 0),
        "PGD": (4, 10, 0),
        "HSJ": (5, 8, 2),
        "DeepFool": (7, 10, 0),
    }
    assert sorted(runs.index) == sorted(want)
    for label, (robust, n, failed) in want.items():
        r = runs.loc[label]
        assert (int(r["robust"]), int(r["n"]), int(r["init_failed"])) == (robust, n, failed)
        assert r["accuracy"] == pytest.approx(robust / n)
        lo, hi = wilson(robust, n)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi), abs=1e-4)
    assert runs.loc["FGSM", "id"] == "fgsm-new"  # the latest run of a cell, not the older


def test_engine_summary_counts_the_same(known):
    got = {s.id: (s.robust, s.n, s.init_failed) for s in summarise(known, ["fgsm-new", "hsj"])}
    assert got == {"fgsm-new": (6, 10, 0), "hsj": (5, 8, 2)}
    (fgsm,) = summarise(known, ["fgsm-new"])
    assert fgsm.interval == pytest.approx(wilson(6, 10), abs=1e-4)


def test_summary_table_cells_from_known_rows(known):
    table = summary_table(known, ["m"]).set_index("model")

    def cell(k, n):
        lo, hi = wilson(k, n)
        return f"{100 * k / n:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] (n={n})"

    assert table.loc["m", "clean"] == cell(8, 10)
    assert table.loc["m", "FGSM ε=0.1"] == cell(6, 10) == "60.0 [31.3, 83.2] (n=10)"
    assert table.loc["m", "FGSM [transfer] ← root ε=0.1"] == cell(9, 10)
    assert table.loc["m", "PGD (targeted random) ε=0.1"] == cell(4, 10)
    assert table.loc["m", "HSJ ε=1"] == cell(5, 8)


def test_rho_adv_by_hand(known):
    rho, n = rho_adv(known, "df")
    assert n == 2 and rho == pytest.approx((0.5 / 5 + 1.0 / 4) / 2)
    # the values its interval is taken over: 0.1 and 0.25, so mean 0.175 ± 1.96·s/√2 with
    # s = 0.15/√2
    values = sorted(rho_adv_values(known, "df"))
    assert values == pytest.approx([0.1, 0.25])
    half = 1.96 * (0.15 / 2**0.5) / 2**0.5
    assert mean_interval(values) == pytest.approx((0.175 - half, 0.175 + half))


def test_worst_case_over_attacks_by_hand(known):
    assert worst_case(known, ["fgsm-new", "pgd"]) == (3, 10)
    assert worst_case(known, ["fgsm-new"]) == (6, 10)
    assert worst_case(known, []) == (0, 0)
    # started in both: HSJ's two failed starts leave 8 instances
    assert worst_case(known, ["hsj", "fgsm-new"]) == (5, 8)


def test_minimal_attack_judging_threshold_by_hand():
    """A minimal attack's example counts at ε when its norm is within ε·(1 + 1e-5) (float32
    noise), not a hair more; a failed or non-finite example never counts."""
    import torch

    from advbench.engine import Batch, judge_minimal

    class Threshold(torch.nn.Module):  # class 1 where the input's sum exceeds 0.5
        def forward(self, x):
            s = x.flatten(1).sum(1, keepdim=True)
            return torch.cat([0.5 - s, s - 0.5], 1)

    model = Threshold()
    x = torch.zeros(4, 1, 1, 4, dtype=torch.float64)
    y = torch.zeros(4, dtype=torch.long)
    b = Batch(list(range(4)), torch.arange(4), x, y, None, torch.zeros(4, dtype=torch.long))
    raw = x.clone()
    raw[0, 0, 0, 0] = 1.0 * (1 + 0.5e-5)  # adversarial, L∞ 1.000005: within ε = 1
    raw[1, 0, 0, 0] = 1.0 * (1 + 2e-5)  # adversarial, L∞ 1.00002: over ε = 1
    raw[2, 0, 0, 0] = 0.25  # not adversarial: the attack found nothing
    raw[3, 0, 0, 0] = float("nan")  # diverged
    judged, min_norm = judge_minimal(model, b, raw, [1.0, 2.0], "linf")
    assert min_norm[:2].tolist() == pytest.approx([1 + 0.5e-5, 1 + 2e-5])
    assert min_norm[2:].tolist() == [float("inf")] * 2
    assert judged[1.0][1].tolist() == [1, 0, 0, 0]
    assert judged[2.0][1].tolist() == [1, 1, 0, 0]
    assert torch.equal(judged[1.0][0][1:], x[1:])  # what does not count is x itself


def _label_row(**kw):
    from types import SimpleNamespace

    base = dict(attack="FGSM", targeted=None, threat="white-box", source_rule=None,
                source_model=None, gradient=None)  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("row", "label"),
    [
        ({}, "FGSM"),
        ({"targeted": "random"}, "FGSM (targeted random)"),
        ({"attack": "CW targeted", "targeted": "all-others"}, "CW targeted"),
        ({"threat": "transfer", "source_rule": "root", "source_model": "std"},
         "FGSM [transfer] ← root"),
        ({"threat": "transfer", "source_rule": "undefended", "source_model": "std"},
         "FGSM [transfer] ← undefended"),
        ({"threat": "transfer", "source_rule": "parent", "source_model": "std"},
         "FGSM [transfer] ← parent"),
        ({"threat": "transfer", "source_rule": "base", "source_model": "std"},
         "FGSM [transfer] ← base"),
        ({"threat": "proxy", "source_rule": "proxy:resnet32", "source_model": "m.proxy"},
         "FGSM [proxy] ← proxy:resnet32"),
        ({"threat": "transfer", "source_rule": "model:other", "source_model": "other"},
         "FGSM [transfer] ← other"),  # a named model: its name, not the rule
        ({"threat": "transfer", "source_model": "std"}, "FGSM [transfer] ← std"),  # 0.1.0 run
        ({"attack": "Transfer PGD", "threat": "transfer", "source_rule": "root"},
         "Transfer PGD ← root"),
        ({"attack": "Black-box PGD", "threat": "proxy", "source_rule": "proxy:resnet32"},
         "Black-box PGD ← proxy:resnet32"),
        ({"gradient": "masked"}, "FGSM [masked gradient]"),
        ({"gradient": "straight-through"}, "FGSM"),
    ],
)  # fmt: skip
def test_threat_labels_by_hand(row, label):
    """Each threat model keys its own cell: the label says targeting, threat, source and a
    masked gradient; a shared rule (root, parent, base, proxy) keeps one column for all
    models, a named source keeps the model's name."""
    from advbench.report import _threat_label

    assert _threat_label(_label_row(**row)) == label


def test_runs_without_rows_are_not_cells_and_partial_runs_say_so(known):
    _run(known, "empty", "bim", 0.1, "2026-01-03", label="BIM")  # registered, nothing stored
    _run(known, "half", "fgsm", 0.2, "2026-01-03", label="FGSM", status="running")
    _samples(known, "half", [(3, 3, 3)] * 3 + [(3, 3, 4)])
    runs = run_results(known)
    assert "BIM" not in set(runs["attack"])
    table = summary_table(known, ["m"]).set_index("model")
    lo, hi = wilson(3, 4)
    assert table.loc["m", "FGSM ε=0.2"] == f"75.0 [{100 * lo:.1f}, {100 * hi:.1f}] (n=4) partial"
    assert table.loc["m", "FGSM ε=0.1"].endswith("(n=10)")  # complete: no mark


def test_a_cell_without_runs_and_a_model_without_runs(known):
    from advbench.errors import BadInput

    _run(known, "other", "fgsm", 0.3, "2026-01-03", label="FGSM", model="root")
    _samples(known, "other", [(3, 3, 3)] * 2)
    table = summary_table(known).set_index("model")
    assert table.loc["m", "FGSM ε=0.3"] == "not run"
    assert table.loc["root", "FGSM ε=0.1"] == "not run"
    with pytest.raises(BadInput, match=r"unknown model\(s\) nope; stored: root, m$"):
        summary_table(known, ["nope"])


def test_wilson_interval_at_the_edges():
    from advbench.metrics import wilson_interval

    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing measured: nothing known
    for k, n in ((0, 1), (1, 1), (0, 7), (7, 7), (3, 7)):
        lo, hi = wilson_interval(k, n)
        assert (lo, hi) == pytest.approx(wilson(k, n), abs=1e-4)
        assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_perturbation_norms_count_only_changes_above_float_noise():
    import torch

    from advbench.metrics import perturbation_norms

    d = torch.tensor([[1e-7, 2e-7, -3.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    l0, l2, linf = perturbation_norms(d.view(2, 1, 2, 2))
    assert l0.tolist() == [2.0, 0.0]  # 1e-7 is float32 noise, 2e-7 and 3 are changes
    assert l2.tolist() == pytest.approx([(4e-14 + 1e-14 + 9.0) ** 0.5, 0.0])
    assert linf.tolist() == [3.0, 0.0]


def test_rho_adv_without_a_found_perturbation_is_nan(known):
    import math

    rho, n = rho_adv(known, "fgsm-new")  # a budget run: no minimal norms
    assert n == 0 and math.isnan(rho)


def test_render_and_split_by_attack(known):
    from advbench.report import by_attack, provenance_line, render

    table = summary_table(known, ["m"])
    md = render(table, "markdown", caption="cap").splitlines()
    assert md[0] == "| " + " | ".join(table.columns) + " |"
    assert md[1] == "|" + "|".join(["---"] * len(table.columns)) + "|"
    assert md[2].startswith("| m | jacobian | 80.0 [") and md[-1] == "cap"
    csv = render(table, "csv").splitlines()
    assert csv[0] == ",".join(table.columns)
    assert csv[1].startswith('m,jacobian,"80.0 [49.0, 94.3] (n=10)"')
    parts = dict(by_attack(table))
    assert list(parts) == ["clean", "DeepFool", "FGSM", "FGSM [transfer] ← root", "HSJ", "PGD",
                           "PGD (targeted random)"]  # fmt: skip
    assert list(parts["FGSM"].columns) == ["model", "defense", "ε=0.1"]
    assert parts["FGSM"].iloc[0]["ε=0.1"] == table.loc[0, "FGSM ε=0.1"]
    line = provenance_line(known, ["m"])
    assert "sample seed 0" in line and "scale smoke" in line and "6 runs" in line


def test_a_one_sample_run_and_a_run_with_one_failed_start_are_cells(known):
    """The smallest cells still count: n = 1, and n = 0 with a single failed start (shown as
    'no start', never replaced by an older run of the cell)."""
    _run(known, "one", "bim", 0.1, "2026-01-03", label="BIM")
    _samples(known, "one", [(3, 3, 3)])
    _run(known, "nostart", "hsj", 3.0, "2026-01-03", label="HSJ", norm="l2", kind="minimal")
    _samples(known, "nostart", [(3, 3, 3)], init_failed=[1])
    runs = run_results(known).set_index("id")
    assert (int(runs.loc["one", "robust"]), int(runs.loc["one", "n"])) == (1, 1)
    assert (int(runs.loc["nostart", "n"]), int(runs.loc["nostart", "init_failed"])) == (0, 1)
    table = summary_table(known, ["m"]).set_index("model")
    assert table.loc["m", "HSJ ε=3"] == "no start (1 failed)"
    assert table.loc["m", "BIM ε=0.1"].endswith("(n=1)")


def test_a_newer_partial_run_never_hides_a_complete_one(tmp_path):
    """One rule (store.recency) picks a cell's run in the summary, the tables and the
    checklist: the newest complete run, a partial one only where none is complete. The
    summary once kept the partial run (it sorted 'running' after 'complete')."""
    db = open_db(tmp_path / "r.db")
    db["models"].insert({"name": "m", "checksum": "c" * 64, "arch": "a", "dataset": "digits",
                         "defense": None, "clean_accuracy": 1.0, "clean_n": 10,
                         "created_at": "0"})  # fmt: skip
    _run(db, "done", "fgsm", 0.1, "2026-01-01T00:00:00")
    _samples(db, "done", [(3, 3, 3)] * 6 + [(3, 3, 4)] * 4)
    _run(db, "partial", "fgsm", 0.1, None, status="running", started_at="2026-02-01T00:00:00")
    _samples(db, "partial", [(3, 3, 4)] * 2)
    df = run_results(db)
    assert list(df["id"]) == ["done"] and df.iloc[0]["robust"] == 6
    db["runs"].delete("done")
    db.execute("delete from samples where run_id = 'done'")
    assert list(run_results(db)["id"]) == ["partial"]  # none complete: the partial shows
