"""Hostile and careless input (issue 13): each case exits 2 with one line on stderr naming
the bad value, no traceback, and leaves the store's files byte-identical (or makes none)."""

from pathlib import Path

import pytest

from advbench.cli import app

ROW = '{"attack": "fgsm", "eps": {"mnist": [0.1]}'


def _one(extra: str) -> str:
    """A suite file of one fgsm row with `extra` keys added to the row."""
    return '{"name": "x", "n": {"smoke": 2}, "attacks": [' + ROW + extra + "}]}"


def _refused(runner, args, needle):
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.stderr
    assert needle in lines[0]
    return lines[0]


TRAIN = ["train", "--dataset", "digits", "--epochs", "1"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--name", "../../x"], "'../../x' is not a valid model name"),
        (["--name", "/tmp/abs"], "'/tmp/abs' is not a valid model name"),
        (["--name", "a/b"], "'a/b' is not a valid model name"),
        (["--name", ""], "'' is not a valid model name"),
        (["--name", "x" * 300], "is not a valid model name"),
        (["--name", ".hidden"], "'.hidden' is not a valid model name"),
        (["--lr", "inf"], "--lr inf must be a number in (0, 1e6]"),
        (["--lr", "nan"], "--lr nan must be a number in (0, 1e6]"),
        (["--weight-decay", "-0.1"], "--weight-decay -0.1 must be a number in [0, 1e3]"),
        (["--seed", str(2**64)], f"--seed {2**64} must be in [0, 2^63)"),
        (["--seed", "-1"], "--seed -1 must be in [0, 2^63)"),
        (["--epochs", "100000000"], "--epochs 100000000 must be in [0, 10,000]"),
    ],
)
def test_train_refuses_before_making_anything(runner, tmp_path, extra, needle):
    _refused(runner, [*TRAIN, *extra, "--db", str(tmp_path / "a.db")], needle)
    assert list(tmp_path.iterdir()) == []  # no database, no checkpoint


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--name", "../x"], "'../x' is not a valid model name"),
        (["--name", "STD"], "'STD' differs from the stored model 'std' only by case or dots"),
        (["--name", "s.td"], "'s.td' differs from the stored model 'std' only by case or dots"),
        (["--lr", "-1"], "--lr -1.0 must be a number in (0, 1e6]"),
        (["--weight-decay", "nan"], "--weight-decay nan must be a number in [0, 1e3]"),
        (["--epochs", "20000"], "--epochs 20000 must be in [0, 10,000]"),
    ],
)
def test_harden_refuses_and_leaves_the_store_as_it_was(snapshot, runner, db_copy, extra, needle):
    before = snapshot(db_copy.parent)
    args = ["harden", "--model", "std", "--defense", "jacobian", "--epochs", "1", *extra]
    _refused(runner, [*args, "--db", str(db_copy)], needle)
    assert snapshot(db_copy.parent) == before


@pytest.mark.parametrize(
    ("defense", "param", "needle"),
    [
        ("feature-squeezing", "bits=17", "parameter bits='17' must be in [1, 16]"),
        ("feature-squeezing", "median=99", "parameter median='99' must be in [0, 15]"),
        ("numpy-quantize", "levels=0", "parameter levels='0' must be in [2, 65536]"),
        ("pnml", "lambda=5", "parameter lambda='5' must be in [0, 1]"),
        ("brelu", "t=0", "parameter t='0' must be in (0, 1000]"),
        ("label-smoothing", "true_weight=1.5", "parameter true_weight='1.5' must be in (0, 1]"),
        # a typo'd weight or noise level would train a model that is all regulariser or noise
        ("jacobian", "lambda=1e30", "parameter lambda='1e30' must be in [0, 10000]"),
        ("nsloss", "eps=1e5", "parameter eps='1e5' must be in [0, 1000]"),
        ("mad", "rvl=1e5", "parameter rvl='1e5' must be in [0, 10000]"),
        ("gda", "sigma=1e40", "parameter sigma='1e40' must be in [0, 10]"),
        ("gda", "copies=5000", "parameter copies='5000' must be in [0, 1000]"),
        ("pgd-at", "step_size=5", "parameter step_size='5' must be in (0, 1]"),
        ("brelu", "t=1e9", "parameter t='1e9' must be in (0, 1000]"),
    ],
)
def test_defense_parameters_out_of_range_are_refused(
    snapshot, runner, db_copy, defense, param, needle
):
    before = snapshot(db_copy.parent)
    args = ["harden", "--model", "std", "--defense", defense, "--param", param]
    _refused(runner, [*args, "--db", str(db_copy)], needle)
    assert snapshot(db_copy.parent) == before


def test_train_refuses_a_name_colliding_by_case_with_a_stored_one(snapshot, runner, db_copy):
    before = snapshot(db_copy.parent)
    _refused(runner, [*TRAIN, "--name", "Jac", "--db", str(db_copy)],
             "'Jac' differs from the stored model 'jac'")  # fmt: skip
    assert snapshot(db_copy.parent) == before


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--attack", "pgd-linf", "--eps", "0.1", "--param", "steps=-5"],
         "parameter steps='-5' must be an integer >= 1"),
        (["--attack", "pgd-linf", "--eps", "0.1", "--param", "restarts=0"],
         "parameter restarts='0' must be an integer >= 1"),
        (["--attack", "pgd-linf", "--eps", "0.1", "--param", "abs_stepsize=inf"],
         "parameter abs_stepsize='inf' must be a finite number >= 0"),
        (["--attack", "fgsm", "--eps", "5"], "--eps 5 is invalid for fgsm: an L∞ budget"),
        (["--attack", "pgd-linf", "--eps", "1.5"], "--eps 1.5 is invalid for pgd-linf"),
        (["--attack", "pgd-linf", "--eps", "0.1", "--param", "steps=2.5"],
         "parameter steps='2.5' is not a valid int"),
        (["--attack", "fgsm-min", "--eps", "0.1", "--param", "eps_step=0"],
         "parameter eps_step='0' must be in (0, 1]"),  # would never stop growing ε
        (["--attack", "jsma", "--eps", "0.1", "--param", "gamma=2"],
         "parameter gamma='2' must be in (0, 1]"),
        (["--attack", "cw-l2", "--eps", "1", "--param", "stepsize=1e20"],
         "parameter stepsize='1e20' must be in (0, 100]"),
        (["--attack", "pgd-l2", "--eps", "1", "--param", "rel_stepsize=0"],
         "parameter rel_stepsize='0' must be in (0, 100]"),  # would never move
        (["--attack", "deepfool-l2", "--eps", "1", "--param", "overshoot=1e9"],
         "parameter overshoot='1e9' must be in [0, 10]"),
        (["--attack", "cw-l2", "--eps", "1", "--param", "linf_clip=2"],
         "parameter linf_clip='2' must be in (0, 1]"),
        (["--attack", "pgd-linf", "--eps", "0.1", "--param", "steps=3", "--param", "steps=4"],
         "--param steps is given twice ('3' and '4')"),  # the last one silently won
        (["--attack", "pgd-l2", "--eps", "1", "--param", "start=sphere"],
         "parameter start='sphere' is not one of: ball, data"),
    ],
)  # fmt: skip
def test_attack_refuses_garbage_values_and_leaves_the_store_as_it_was(
    snapshot, runner, db_copy, extra, needle
):
    before = snapshot(db_copy.parent)
    _refused(runner, ["attack", "--model", "std", *extra, "--n", "4", "--db", str(db_copy)],
             needle)  # fmt: skip
    assert snapshot(db_copy.parent) == before


def test_an_l2_budget_above_one_is_still_valid(runner, db_copy):
    res = runner.invoke(app, ["attack", "--model", "std", "--attack", "pgd-l2", "--eps", "2",
                              "--n", "4", "--device", "cpu", "--db", str(db_copy)])  # fmt: skip
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{", "is not valid JSON"),
        ("[]", "must be a JSON object with keys name, n, attacks; got a list"),
        ('{"name": "x", "n": {"smoke": 2}}', "lacks attacks"),
        ('{"name": "x", "n": {"smoke": 2}, "attacks": [{"attack": "fgsm", "eps": [0.1]}]}',
         "attacks[0].eps must map data-set families"),
        ('{"name": "x", "n": {"cpu": 2}, "attacks": [{"attack": "fgsm", "eps": {"mnist": [0.1]}}]}',
         "suite 'x' has no smoke scale; it has cpu"),
        ('{"name": "x", "n": {"smoke": 0}, "attacks": [{"attack": "fgsm", "eps": {}}]}',
         "n must map scales"),
        (None, "is not a file"),  # a directory named like a suite file
        ('{"name": "x", "n": {"smoke": 2}, "seed": "0", "attacks": [' + ROW + '}]}',
         "seed must be an integer in [0, 2^63); got '0'"),
        ('{"name": "x", "n": {"smoke": 2}, "atacks": [], "attacks": [' + ROW + '}]}',
         "unknown key 'atacks'"),
        (_one(', "parms": {}'),
         "attacks[0] has an unknown key 'parms'"),
        (_one(', "params": [1]'),
         "attacks[0].params must be an object"),
        (_one(', "scale": {"smoke": 3}'),
         "attacks[0].scale must map names to objects"),
        (_one(', "scale": {"tiny": {}}'),
         "attacks[0].scale has 'tiny'"),
        (_one(', "n": {"smoke": "4"}'),
         "attacks[0].n must map scales"),
        ('{"name": "x", "n": {"smoke": 2}, "attacks": [{"attack": "pgd-linf", "eps": '
         '{"mnist": [0.1]}, "scale": {"cpu": {"steps": 1e20}}}]}',
         "attacks[0] (pgd-linf): parameter steps=1e+20 must be at most 1,000,000"),
        (_one(', "targeted": "every"'),
         "attacks[0].targeted 'every' is not one of: all-others, random"),
        (_one(', "why": ["measured"]'),
         "attacks[0].why must be a string"),
    ],
)  # fmt: skip
def test_malformed_suite_files_are_refused_before_the_store_is_touched(
    snapshot, runner, db_copy, tmp_path, text, needle
):
    suite = tmp_path / "s.json"
    if text is None:
        suite.mkdir()
    else:
        suite.write_text(text)
    before = snapshot(db_copy.parent)
    _refused(runner, ["attack", "--model", "std", "--suite", str(suite), "--scale", "smoke",
                      "--db", str(db_copy)], needle)  # fmt: skip
    assert snapshot(db_copy.parent) == before


def test_every_shipped_suite_is_valid():
    from advbench.suites import available, load_suite

    assert all(load_suite(name)["attacks"] for name in available())


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([*TRAIN, "--device", "cuda:x"], "--device 'cuda:x' is not a device; valid choices"),
        ([*TRAIN, "--device", "tpu"], "--device 'tpu' is not a device; valid choices"),
        (["demo", "--scale", "nonsense"], "unknown scale 'nonsense'; valid choices: cpu, smoke"),
    ],
)
def test_bad_device_or_demo_scale_is_refused_before_anything_is_made(runner, tmp_path, args,
                                                                     needle):  # fmt: skip
    _refused(runner, [*args, "--db", str(tmp_path / "a.db")], needle)
    assert list(tmp_path.iterdir()) == []


def test_cuda_on_a_machine_without_one_is_refused(runner, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    _refused(runner, [*TRAIN, "--device", "cuda", "--db", str(tmp_path / "a.db")],
             "--device cuda: this machine has no CUDA device")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def _attack_std(runner, db):
    return runner.invoke(app, ["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1",
                               "--n", "4", "--device", "cpu", "--db", str(db)])  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value"),
    [(("spec", "activation_param"), 0.01),  # what the probe did to a brelu model's t
     (("sha256",), "0" * 64)],  # the side file's record of the weights it describes
)  # fmt: skip
def test_changed_checkpoint_metadata_is_refused(snapshot, runner, db_copy, path, value):
    import json

    meta = db_copy.parent / "models" / "std.json"
    doc = json.loads(meta.read_text())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    meta.write_text(json.dumps(doc))
    before = snapshot(db_copy.parent)
    res = _attack_std(runner, db_copy)
    assert res.exit_code == 2 and f"disagrees with the database on {path[-1]}" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert snapshot(db_copy.parent) == before


@pytest.mark.parametrize("damage", ["not json", "header", "other tensors"])
def test_damaged_checkpoints_are_one_line_even_with_a_matching_checksum(
    snapshot, runner, db_copy, damage
):
    import json

    import torch
    from safetensors.torch import save_file

    from advbench.config import sha256_file
    from advbench.store import open_db

    folder = db_copy.parent / "models"
    weights = folder / "std.safetensors"
    if damage == "not json":
        (folder / "std.json").write_text("{not json")
    elif damage == "header":
        raw = weights.read_bytes()
        weights.write_bytes((10**12).to_bytes(8, "little") + raw[8:])  # oversized header
    else:
        save_file({"w": torch.zeros(3)}, str(weights))
    db = open_db(db_copy)  # the attacker also rewrote the recorded checksums
    db["models"].update("std", {"checksum": sha256_file(weights)})
    if damage != "not json":
        meta = json.loads((folder / "std.json").read_text())
        meta["sha256"] = sha256_file(weights)
        (folder / "std.json").write_text(json.dumps(meta))
    db.execute("delete from environments")  # so that this machine's row would be new
    db.conn.commit()
    db.close()
    before = snapshot(db_copy.parent)
    needle = "is not valid" if damage == "not json" else "cannot be loaded"
    for args in (
        ["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1", "--n", "4"],
        ["measure", "--model", "std", "--metric", "jacobian", "--n", "4"],
    ):
        _refused(runner, [*args, "--device", "cpu", "--db", str(db_copy)], needle)
        # verified before the environment row is written: the store is as it was
        assert snapshot(db_copy.parent) == before


def test_a_damaged_transfer_source_is_refused_before_anything_is_written(snapshot, runner, db_copy,
                                                                          tmp_path):  # fmt: skip
    """A suite row crafting on the attacked model's root (`source: root`): the root's
    checkpoint is verified with the attacked model's, before the environment row."""
    from advbench.store import open_db

    suite = tmp_path / "t.json"
    suite.write_text('{"name": "t", "n": {"smoke": 4}, "attacks": [' + ROW +
                     ', "source": "root"}]}')  # fmt: skip
    (db_copy.parent / "models" / "std.json").write_text("{not json")
    db = open_db(db_copy)
    db.execute("delete from environments")  # so that this machine's row would be new
    db.conn.commit()
    db.close()
    before = snapshot(db_copy.parent)
    _refused(runner, ["attack", "--model", "jac", "--suite", str(suite), "--scale", "smoke",
                      "--device", "cpu", "--db", str(db_copy)], "is not valid")  # fmt: skip
    assert snapshot(db_copy.parent) == before


def test_a_database_path_with_uri_characters_is_that_file(runner, tmp_path):
    import shutil

    fixture = Path(__file__).parent / "fixtures" / "store_0003.db"
    target = tmp_path / "a?b#c.db"
    shutil.copy(fixture, target)
    (tmp_path / "a").write_text("not a database")  # what "file:a?b#c.db" would name
    res = runner.invoke(app, ["runs", "--db", str(target)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "fgsm" in res.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["measure", "--model", "std", "--metric", "davies-bouldin", "--n", "5"],
         "--n 5: davies-bouldin needs more test points than the 10 classes; use --n 11"),
        (["measure", "--model", "std", "--metric", "jacobian", "--run", "FGSM"],
         "--run is only for"),
        (["measure", "--model", "std", "--metric", "jacobian", "--n", "0"], "--n 0"),
        (["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1", "--n", "100000"],
         "--n 100000 exceeds the"),
        (["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1", "--n", "100000",
          "--proxy", "madry-mnist"], "--n 100000 exceeds the"),  # no proxy is trained first
        (["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1", "--proxy",
          "madry-mnist", "--proxy-epochs", "100000000"], "--proxy-epochs 100000000 must be <="),
    ],
)  # fmt: skip
def test_measure_and_attack_check_everything_before_writing(
    snapshot, runner, db_copy, args, needle
):
    """Not even the environment row is written for a refused request."""
    before = snapshot(db_copy.parent)
    _refused(runner, [*args, "--db", str(db_copy)], needle)
    assert snapshot(db_copy.parent) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["report", "--table", "fidel:III", "--scale", "cpu"],
         "--scale cpu sets the scale of the commands --missing prints; it does not apply to "
         "--table"),
        (["report", "--table", "fidel:III", "--model", "std"],
         "--model picks models for the summary and --figure curves; it does not apply to --table"),
        (["report", "--claims", "fidel", "--model", "std"], "it does not apply to --claims"),
        (["report", "--table", "fidel:III", "--format", "markdown", "--verbose"],
         "--verbose lists the runs behind each cell"),
        (["report", "--claims", "fidel", "--output", "out"],
         "--output does not apply to --claims"),
        (["report", "--controls", "fidel", "--output", "out"],
         "--output does not apply to --controls"),
        (["report", "--controls", "nope"],
         "unknown paper 'nope'; valid choices: all, fidel, jakubovitz, madnet, pesso"),
        (["report", "--claims", "fidel", "--format", "latex"],
         "--format latex is not a format of --claims; valid choices: table, markdown, csv, "
         "json"),
        (["report", "--controls", "fidel", "--format", "html"],
         "--format html is not a format of --controls; valid choices: table, markdown, csv, "
         "json"),
        (["report", "--budgets", "fidel", "--format", "latex"],
         "--format latex is not a format of --budgets; valid choices: table, markdown, csv, "
         "json"),
        (["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1", "--proxy-epochs", "3"],
         "--proxy-epochs applies only with --proxy ARCH"),
        (["attack", "--model", "std", "--attack", "fgsm", "--eps", "0.1", "--address", "x:1"],
         "--address joins a Ray cluster; it applies only with --executor ray"),
    ],
)  # fmt: skip
def test_options_a_mode_would_ignore_are_refused(snapshot, runner, db_copy, args, needle):
    before = snapshot(db_copy.parent)
    _refused(runner, [*args, "--db", str(db_copy)], needle)
    assert snapshot(db_copy.parent) == before
