"""`models` and `runs` fit an 80-column terminal, print tab-separated lines in a pipe, and
give raw values as csv or json."""

import csv
import io
import json

from rich.console import Console

from advbench.cli import app
from advbench.listing import Column, render
from advbench.store import open_db

COLUMNS = [
    Column("id", "id", lambda r: r["id"][:10], drop=3),
    Column("model", "model", lambda r: r["model"]),
    Column("attack", "attack", lambda r: r["attack"]),
    Column("eps", "ε", lambda r: f"{r['eps']:g}"),
    Column("seed", "seed", lambda r: str(r["seed"]), drop=4),
    Column("scale", "scale", lambda r: r["scale"], drop=2),
    Column("status", "status", lambda r: r["status"]),
    Column("wall_s", "time s", lambda r: f"{r['wall_s']:.1f}", drop=1),
]
ROWS = [
    {"id": "0123456789abcdef", "model": "madnet-mad-at-mnist-5k-longer-name", "eps": 0.3,
     "attack": "PGD-Linf (2x steps)", "seed": 0, "scale": "smoke", "status": "complete",
     "wall_s": 12.25},
    {"id": "fedcba9876543210", "model": "fidel-combined-mnist-5k", "eps": 0.05,
     "attack": "cw-l2", "seed": 1, "scale": "cpu", "status": "running", "wall_s": 3.0},
]  # fmt: skip


def table_at(width: int, wide: bool = False) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=width, color_system=None)
    render(console, "Stored runs", COLUMNS, ROWS, wide=wide)
    return buf.getvalue()


def test_an_80_column_table_drops_columns_and_keeps_names_and_numbers_whole():
    text = table_at(80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for whole in ["madnet-mad-at-mnist-5k-longer-name", "PGD-Linf (2x steps)", "0.05",
                  "complete", "running"]:  # fmt: skip
        assert whole in text, whole
    assert "…" not in text
    # the least useful go first (seed, then the id); the caption names them
    assert "0123456789" not in text and "not shown at this width: id, seed" in text
    wide = table_at(200)
    assert "0123456789" in wide and "12.2" in wide and "not shown" not in wide
    folded = table_at(80, wide=True)  # --wide keeps every column, folded to fit
    assert "seed" in folded and "not shown" not in folded


def test_models_in_a_pipe_csv_and_json(db_copy, runner):
    db = open_db(db_copy)
    stored = list(db["models"].rows_where(order_by="created_at"))
    res = runner.invoke(app, ["models", "--db", str(db_copy)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["name", "arch", "dataset"] and "sha256" in header
    assert [line.split("\t")[0] for line in lines[1:]] == [r["name"] for r in stored]
    assert "┃" not in res.stdout  # no box in a pipe
    res = runner.invoke(app, ["models", "--db", str(db_copy), "--format", "csv"])
    got = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["checksum"] for r in got] == [r["checksum"] for r in stored]  # full, raw
    assert float(got[0]["clean_accuracy"]) == stored[0]["clean_accuracy"]
    assert float(got[0]["ci_low"]) < stored[0]["clean_accuracy"] < float(got[0]["ci_high"])
    res = runner.invoke(app, ["models", "--db", str(db_copy), "--format", "json"])
    assert [r["name"] for r in json.loads(res.stdout)] == [r["name"] for r in stored]


def test_runs_grep_and_a_bad_format(db_copy, runner):
    args = ["--db", str(db_copy)]
    res = runner.invoke(app, ["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1",
                              "--n", "8", *args, "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["runs", *args])
    complete = [line for line in res.stdout.splitlines() if "\tcomplete\t" in line]
    assert len(complete) == 1 and complete[0].split("\t")[1:4] == ["std", "fgsm", "0.1"]
    import gc

    # the earlier commands' connections close (and checkpoint their WAL into the file) when
    # collected; that must happen before the snapshot, not during the refused command
    gc.collect()
    before = db_copy.read_bytes()
    res = runner.invoke(app, ["runs", *args, "--format", "xml"])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        "Error: unknown format 'xml'; valid choices: csv, json, table"
    ]
    assert db_copy.read_bytes() == before


def test_models_show_the_paper_role_and_seed_of_controls_and_replicates(db_copy, runner):
    """A plan's same-budget control and seed replicates are told apart in `advbench models`
    (issue 33): the paper role each fills ("gda-control-s1") and its training seed. The
    rows are copies of the store's model with the fields a zantedeschi plan stores."""
    db = open_db(db_copy)
    base = next(iter(db["models"].rows_where("name = 'std'")))
    made = {"zgda": ({"copies": 10, "sigma": 0.3}, 0), "zctl1": ({"copies": 0, "sigma": 0.3}, 1)}
    for name, (params, seed) in made.items():
        db["models"].insert({**base, "name": name, "arch": "ibm-cnn", "dataset": "mnist-5k",
                             "activation": "relu", "defense": "gda", "seed": seed,
                             "defense_config": json.dumps(params),
                             "config": json.dumps({"kind": "harden"})})  # fmt: skip
    res = runner.invoke(app, ["models", "--db", str(db_copy), "--format", "json"])
    assert res.exit_code == 0, res.output
    got = {r["name"]: (r["role"], r["seed"]) for r in json.loads(res.stdout)}
    assert got["zgda"] == ("zantedeschi:gda", 0)
    assert got["zctl1"] == ("zantedeschi:gda-control-s1", 1)
    assert got["std"][0] is None  # a digits model fills no paper's role
