"""Figures read back from their axes: every plotted point must equal the per-ε accuracy
worked out by hand from hand-made sample rows (or, end to end, counted from the stored
rows with SQL), and the paper's points must be the paper's numbers, as a separate series.

Hand-made store (MNIST, embedded subset), zantedeschi's CNN + RELU, 10 instances each:
  FGSM ε 0.01: 9 robust; ε 0.05: 7; ε 0.1: 4 (and one clean error that stays wrong).
  ResNet + RELU: FGSM ε 0.1 only: 2 robust.
fidel's combined model, targeted C&W with restarts at ε 1, 4 instances (3 classified right):
  best L2 after each of 3 restarts: [None, 2.0, 0.5], [3.0, 0.9, 0.9], [None, None, None],
  clean error [None, None, None] → robust after restart 1: 3 (of 4), 2: 2, 3: 1.
A DeepFool run (white-box, minimal, ε 2) of model m: min norms 0.5, 1.5, None (not found),
  0 (a clean error) → the curve is 3 of 4 robust below 0.5, 2 up to 1.5, 1 after.
"""

import json
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest
from matplotlib.image import imread
from scipy.stats import binomtest

from advbench.cli import app
from advbench.report import drawing
from advbench.report import figures as figs
from advbench.report.papers import figures as all_figures
from advbench.store import open_db

ZANTEDESCHI_TABLE_1 = {"CNN + RELU": 73.88, "ResNet + RELU": 61.88}  # 001 Table 1 diagonal


def wilson(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return ci.low * 100, ci.high * 100


def _model(db, name, arch, defense=None, activation="relu", **cfg):
    db["models"].insert({
        "name": name, "checksum": name[:1] * 64, "arch": arch, "dataset": "mnist-5k",
        "activation": activation, "defense": defense, "config": json.dumps({"kind": "train",
        **cfg}), "defense_config": "{}", "clean_accuracy": 0.9, "clean_n": 10, "seed": 0,
        "created_at": name})  # fmt: skip


def _run(db, rid, model, attack, eps, robust, n=10, clean_errors=0, **kw):
    """A run whose first `robust` instances stay right, then broken ones, then clean errors
    that stay wrong."""
    db["runs"].insert({
        "id": rid, "model": model, "model_checksum": model[:1] * 64, "attack": attack,
        "label": kw.pop("label", None), "norm": kw.pop("norm", "linf"),
        "kind": kw.pop("kind", "budget"), "eps": eps, "config": "{}", "dataset": "mnist-5k",
        "split": "test", "n": n, "n_samples": n, "seed": 0, "scale": "smoke",
        "status": "complete", "finished_at": rid, "started_at": rid, "threat": "white-box",
        "only_correct": 0, **kw})  # fmt: skip
    rows = []
    for i in range(n):
        clean = 7 if i >= n - clean_errors else 3
        adv = 3 if i < robust else 5
        rows.append({"run_id": rid, "idx": i, "position": i, "label": 3, "clean_pred": clean,
                     "adv_pred": adv if clean == 3 else 7, "success": int(adv != 3),
                     "l2": 0.0, "x_l2": 1.0, "eps": eps})  # fmt: skip
    db["samples"].insert_all(rows, pk=("run_id", "position"))
    return rows


@pytest.fixture
def known(tmp_path):
    db = open_db(tmp_path / "f.db")
    _model(db, "cnn", "ibm-cnn")
    _model(db, "resnet", "ibm-resnet")
    for eps, robust in ((0.01, 9), (0.05, 7), (0.1, 4)):
        _run(db, f"fgsm-{eps}", "cnn", "fgsm", eps, robust, clean_errors=1, label="FGSM")
    _run(db, "fgsm-resnet", "resnet", "fgsm", 0.1, 2)
    return db


def _lines(fig, gid_prefix):
    return {
        line.get_gid().split(":", 1)[1]: line
        for ax in fig.axes
        for line in ax.lines
        if (line.get_gid() or "").startswith(gid_prefix)
    }


def test_plotted_points_are_the_stored_accuracies(known):
    spec = all_figures()["zantedeschi:fig3"]
    fd = figs.build(known, spec)
    fig = drawing.draw(fd)
    measured = _lines(fig, "measured:")
    assert list(measured["CNN + RELU"].get_xdata()) == [0.01, 0.05, 0.1]
    assert list(measured["CNN + RELU"].get_ydata()) == pytest.approx([90.0, 70.0, 40.0])
    assert list(measured["ResNet + RELU"].get_xdata()) == [0.1]
    assert list(measured["ResNet + RELU"].get_ydata()) == pytest.approx([20.0])
    assert "CNN + BRELU" not in measured  # no model of that role: no line, not a zero
    # the paper's numbers are their own series, at the ε of Table 1
    paper = _lines(fig, "paper:")
    for name, value in ZANTEDESCHI_TABLE_1.items():
        assert list(paper[name].get_xdata()) == [0.1]
        assert list(paper[name].get_ydata()) == pytest.approx([value])
    # the error bars are the Wilson interval of each point
    cnn = next(s for s in fd.panels[0].series if s.series.label == "CNN + RELU")
    filled = [p for p in cnn.points if p.result.measured is not None]
    for point, k in zip(filled, (9, 7, 4), strict=True):
        lo, hi = wilson(k, 10)
        assert (point.result.ci_low, point.result.ci_high) == pytest.approx((lo, hi), abs=1e-2)
        assert point.result.n == 10


def test_restart_panel_reads_each_restart_from_the_trace(tmp_path):
    db = open_db(tmp_path / "r.db")
    _model(db, "std", "keras-mnist")
    db["models"].insert({"name": "comb", "checksum": "k" * 64, "arch": "keras-mnist",
                         "dataset": "mnist-5k", "defense": "nsloss+jacobian", "parent": "std",
                         "config": json.dumps({"kind": "harden"}), "defense_config": "{}",
                         "created_at": "z"})  # fmt: skip
    label = "CW-L2-Restarts (targeted)"
    rows = _run(
        db,
        "rs",
        "comb",
        "cw-l2-restarts",
        1.0,
        robust=1,
        n=4,
        clean_errors=1,
        label=label,
        suite="fidel",
        targeted="all-others",
        kind="minimal",
        norm="l2",
    )
    traces = [[None, 2.0, 0.5], [3.0, 0.9, 0.9], [None, None, None], [None, None, None]]
    for row, trace in zip(rows, traces, strict=True):
        db["samples"].update(("rs", row["position"]), {"trace": json.dumps(trace)})
    # instance 0 is broken by its third restart, 1 by its second; 2 stays robust
    db["samples"].update(("rs", 0), {"adv_pred": 5})
    db["samples"].update(("rs", 2), {"adv_pred": 3})
    fd = figs.build(db, all_figures()["fidel:fig1a"])
    mnist = next(p for p in fd.panels if p.panel.data == "mnist")
    eps1 = next(s for s in mnist.series if s.series.label.endswith("ε = 1"))
    assert eps1.extra["restarts"] == [(1, 3, 4), (2, 2, 4), (3, 1, 4)]
    # after the last restart it is the run's own robust count
    assert eps1.points[0].result.measured == pytest.approx(25.0)
    line = _lines(drawing.draw(fd), "restarts:")[eps1.series.label]
    assert list(line.get_ydata()) == pytest.approx([75.0, 50.0, 25.0])


def test_curves_minimal_norms_and_worst_case(known):
    rows = _run(
        known,
        "df",
        "cnn",
        "deepfool-l2",
        2.0,
        robust=2,
        n=4,
        clean_errors=1,
        label="DeepFool",
        kind="minimal",
        norm="l2",
    )
    for row, m in zip(rows, (1.5, 0.5, None, 0.0), strict=True):
        known["samples"].update(("df", row["position"]), {"min_norm": m})
    # instance 0's norm 1.5 is within ε 2: broken at the run's ε (adv 5); 2 not found
    known["samples"].update(("df", 0), {"adv_pred": 5})
    known["samples"].update(("df", 2), {"adv_pred": 3})
    fd = figs.curves(known, ["cnn"])
    l2 = next(p for p in fd.panels if p.panel.title == "cnn: l2")
    df = next(s for s in l2.series if s.series.label == "DeepFool")
    curve = {x: r for x, r, _ in df.extra["minimal"]}
    assert curve[0.0] == 3 and curve[0.5] == 2 and curve[1.5] == 1 and curve[2.0] == 1
    # a second attack at ε 0.1 (L∞) breaking instances the first left: worst case by hand
    _run(known, "pgd", "cnn", "pgd-linf", 0.1, robust=2, clean_errors=1, label="PGD")
    known["samples"].update(("pgd", 3), {"adv_pred": 3})  # FGSM broke 3; PGD leaves it
    fd = figs.curves(known, ["cnn"])
    linf = next(p for p in fd.panels if p.panel.title == "cnn: linf")
    worst = next(s for s in linf.series if s.series.label.startswith("worst"))
    # FGSM ε 0.1 robust: 0-3; PGD: 0, 1, 3 → robust in both: 0, 1, 3 = 3 of 10
    assert [(p.x, p.result.measured) for p in worst.points] == [(0.1, pytest.approx(30.0))]
    assert list(_lines(drawing.draw(fd), "measured:")["worst case (linf)"].get_ydata()) == [30.0]


def test_every_figure_renders_without_data(tmp_path, runner):
    """On a store with no runs, each figure still writes a readable PNG and SVG: the
    paper's points and, per panel, a note naming what fills it."""
    open_db(tmp_path / "e.db").close()
    out = tmp_path / "figs"
    res = runner.invoke(app, ["report", "--db", str(tmp_path / "e.db"), "--figure", "all",
                              "--output", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    for fid in all_figures():
        stem = fid.replace(":", "_")
        img = imread(out / f"{stem}.png")
        assert img.shape[0] > 300 and img.shape[1] > 300
        assert img[..., :3].std() > 0.05  # not a blank page
        root = ET.parse(out / f"{stem}.svg").getroot()
        assert root.tag.endswith("svg")
    assert "needs CIFAR-10" in res.output and "advbench report --missing --figure" in res.output


def test_every_figure_has_labelled_axes_and_captions(known):
    for spec in all_figures().values():
        if spec.id == "madnet:tsne":
            continue  # no model stored: its panels are notes
        fd = figs.build(known, spec)
        fig = drawing.draw(fd)
        panels = [ax for ax in fig.axes if ax.get_title()]
        assert len(panels) == len(spec.panels), spec.id
        for ax in panels:
            assert ax.get_xlabel() and ax.get_ylabel(), (spec.id, ax.get_title())
        assert any("Points: measured accuracy" in line for line in fd.caption)


def test_bad_figure_input_is_refused(known, tmp_path, runner):
    db = str(tmp_path / "f.db")
    for args, needle in (
        (["--figure", "nope"], "unknown figure 'nope'"),
        (["--figure", "curves"], "needs --model"),
        (["--figure", "curves", "--model", "zz"], "unknown model 'zz'"),
        (["--figure", "all", "--format", "pdf"], "not a figure format"),
    ):
        res = runner.invoke(app, ["report", "--db", db, *args, "--output", str(tmp_path / "o")])
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.output
    assert not (tmp_path / "o").exists()


def test_tsne_panel_from_small_cifar_files(tmp_path, runner, cifar_dir):
    """madnet's t-SNE on CIFAR-format files: the CIFAR CE panel scatters every test image's
    embedding with its label, and its Davies–Bouldin index is scikit-learn's on the
    model's own penultimate features, computed here."""
    import torch
    from sklearn.metrics import davies_bouldin_score

    from advbench import data as datasets
    from advbench.catalogue import load_model

    data = cifar_dir
    common = ["--db", str(tmp_path / "t.db"), "--data-dir", str(data)]
    res = runner.invoke(app, ["train", "--dataset", "cifar10", "--arch", "resnet56", "--epochs",
                              "1", "--name", "ce", *common])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", "--figure", "madnet:tsne", "--output",
                              str(tmp_path / "out"), *common])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert imread(tmp_path / "out" / "madnet_tsne.png").shape[0] > 300
    store = open_db(tmp_path / "t.db")
    fd = figs.build(store, all_figures()["madnet:tsne"], data_dir=data)
    ce = next(p for p in fd.panels if p.panel.title == "CIFAR-10: CE")
    emb = ce.series[0].extra
    test = datasets.load("cifar10", "test", data_dir=data)
    x, y = test.get(torch.arange(12))
    assert sorted(emb["labels"]) == sorted(y.tolist()) and len(emb["xy"]) == 12
    model, _, _ = load_model(store, "ce", "cpu")
    with torch.no_grad():
        feats = model.eval().embed(x).flatten(1).numpy()
    assert emb["dbi"] == pytest.approx(davies_bouldin_score(feats, y.numpy()), rel=1e-4)
    fig = drawing.draw(fd)
    (points,) = [c for ax in fig.axes for c in ax.collections
                 if c.get_gid() == "embedding:CE"]  # fmt: skip
    assert len(points.get_offsets()) == 12
    mad = next(p for p in fd.panels if p.panel.title == "CIFAR-10: MadNet")
    assert "no stored runs yet" in mad.note


def test_cifar_panel_from_small_cifar_files(tmp_path, runner, cifar_dir):
    """jakubovitz Fig. 1 (FGSM against ε, MNIST and CIFAR-10): with CIFAR-format files on
    disk its CIFAR panel plots the stored runs; the MNIST panel says what fills it."""
    data = cifar_dir
    db = str(tmp_path / "c.db")
    common = ["--db", db, "--data-dir", str(data)]
    res = runner.invoke(app, ["train", "--dataset", "cifar10", "--arch", "cnn4-cifar",
                              "--epochs", "1", "--name", "jak-none", *common])  # fmt: skip
    assert res.exit_code == 0, res.output
    # every ε afresh, as the paper (and the plan) runs it: a chained run fills no point
    res = runner.invoke(app, ["attack", "--model", "jak-none", "--attack", "fgsm", "--eps",
                              "0.002,0.01", "--n", "12", "--no-shortcuts", *common])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", "--figure", "jakubovitz:fig1", "--output",
                              str(tmp_path / "out"), *common])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert imread(tmp_path / "out" / "jakubovitz_fig1.png").shape[0] > 300
    store = open_db(tmp_path / "c.db")
    expected = {
        eps: robust / n * 100
        for eps, robust, n in store.execute(
            "select r.eps, sum(s.clean_pred = s.label and s.adv_pred = s.label), count(*) "
            "from runs r join samples s on s.run_id = r.id group by r.id"
        )
    }
    fd = figs.build(store, all_figures()["jakubovitz:fig1"], data_dir=data)
    cifar = next(p for p in fd.panels if p.panel.data == "cifar10")
    line = _lines(drawing.draw(fd), "measured:")["No defense"]
    assert dict(zip(line.get_xdata(), line.get_ydata(), strict=True)) == pytest.approx(expected)
    assert not cifar.note
    mnist = next(p for p in fd.panels if p.panel.data == "mnist")
    assert "no stored runs yet" in mnist.note


# ---- every paper figure reads back what is stored ----------------------------------------


def _unflatten(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out


class _Filler:
    """Stores, for every point of a figure, a model of its role and runs matching its cell,
    with robust counts drawn here: the numbers the figure must plot."""

    def __init__(self, db, spec, rng):
        self.db, self.spec, self.rng = db, spec, rng
        self.models: dict[tuple, str] = {}
        self.expected: dict[tuple, float] = {}
        self.n = 0

    def model(self, data, key):
        from advbench.report.papers import DATA

        if (data, key) in self.models:
            return self.models[(data, key)]
        role = self.spec.roles[(data, key)]
        name = f"{data}-{key}"
        config = {"kind": "train"} if role.defense is None else {"kind": "harden", **role.config}
        self.db["models"].insert({
            "name": name, "checksum": f"{len(self.models):064d}", "arch": role.arch,
            "dataset": DATA[data][0], "activation": role.activation or "relu",
            "defense": role.defense, "config": json.dumps(config),
            "defense_config": json.dumps(_unflatten(role.params)),
            "clean_accuracy": self.rng.integers(0, 11) / 10, "clean_n": 10,
            "created_at": name})  # fmt: skip
        self.models[(data, key)] = name
        return name

    def run(self, model, cell, label, robust):
        m = cell.match
        self.n += 1
        source = None
        if "source_role" in m:
            source = self.model(cell.data, m["source_role"])
        threat = m.get("threat") or ("transfer" if source else "white-box")
        rid = f"r{self.n}"
        self.db["runs"].insert({
            "id": rid, "model": model, "attack": m.get("attack", "x"), "label": label,
            "suite": m.get("suite"), "norm": "linf", "kind": "budget", "eps": m["eps"],
            "config": json.dumps({"params": m.get("params", {})}), "n": 10, "n_samples": 10,
            "seed": 0, "scale": "smoke", "status": "complete", "finished_at": rid,
            "started_at": rid, "threat": threat, "targeted": m.get("targeted"),
            "source_model": source, "only_correct": 0})  # fmt: skip
        rows = [{"run_id": rid, "idx": i, "position": i, "label": 1, "clean_pred": 1,
                 "adv_pred": 1 if i in robust else 2, "success": int(i not in robust),
                 "l2": 0.0, "x_l2": 1.0, "eps": m["eps"]} for i in range(10)]  # fmt: skip
        self.db["samples"].insert_all(rows, pk=("run_id", "position"))

    def fill(self, cell):
        ident = (cell.role, cell.data, json.dumps(cell.match, sort_keys=True, default=str),
                 cell.metric)  # fmt: skip
        if ident in self.expected:
            return
        model = self.model(cell.data, cell.role)
        for req in cell.requires:
            self.model(cell.data, req)
        if cell.metric == "clean":
            acc = self.db["models"].get(model)["clean_accuracy"]
            self.expected[ident] = acc * 100
            return
        labels = cell.match.get("labels") or [cell.match.get("label")]
        sets = [set(self.rng.choice(10, self.rng.integers(0, 11), replace=False).tolist())
                for _ in labels]  # fmt: skip
        for label, robust in zip(labels, sets, strict=True):
            self.run(model, cell, label, robust)
        self.expected[ident] = len(set.intersection(*sets)) * 10.0


@pytest.mark.parametrize("fid", [f for f in all_figures() if f != "madnet:tsne"])
def test_every_figure_plots_the_stored_accuracies(tmp_path, fid):
    """Every curve point of every paper figure (the t-SNE is a picture, not a curve) is the
    accuracy of the runs stored for it; the paper's points are their own series."""
    spec = all_figures()[fid]
    db = open_db(tmp_path / "all.db")
    filler = _Filler(db, spec, np.random.default_rng(zlib.crc32(fid.encode())))
    panels = figs.points(figs.StoredRuns(db), spec, draw_data=False)
    for panel in panels:
        for s in panel.series:
            for point in s.points:
                filler.fill(point.result.cell)
    fd = figs.build(db, spec)
    fig = drawing.draw(fd)
    axes = [ax for ax in fig.axes if ax.get_title()]
    for ax, pd_ in zip(axes, fd.panels, strict=True):
        assert ax.get_title() == pd_.panel.title
        lines = {line.get_gid(): line for line in ax.lines if line.get_gid()}
        for s in pd_.series:
            if pd_.panel.kind == "restarts":
                continue  # no per-restart trace stored here: tested above
            cells = figs.series_cells(spec, pd_.panel, s.series)
            want = [(x, filler.expected[(c.role, c.data, json.dumps(c.match, sort_keys=True,
                     default=str), c.metric)]) for x, c in cells]  # fmt: skip
            line = lines[f"measured:{s.series.label}"]
            got = list(zip(line.get_xdata(), line.get_ydata(), strict=True))
            assert got == [(x, pytest.approx(y)) for x, y in want], (fid, s.series.label)
            if s.series.paper:
                paper = lines[f"paper:{s.series.label}"]
                assert len(paper.get_xdata()) == len(s.paper)
