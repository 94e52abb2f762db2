"""Bring your own model: a factory's or torchvision's module with safetensors weights is
stored like a trained one (same predictions, normalisation folded in, checksummed) and
attacked by every command; `convert` takes a PyTorch checkpoint and refuses a pickle that
would run code, without running it."""

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from advbench import data as datasets
from advbench.catalogue import load_model
from advbench.cli import app
from advbench.store import open_db

NETS = Path(__file__).parent / "fixtures" / "usernets"


@pytest.fixture
def usernets(monkeypatch):
    monkeypatch.syspath_prepend(str(NETS))
    import usernets

    return usernets


def _one_error_line(res, *words):
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_a_factory_model_keeps_its_predictions_and_gets_attacked(
    snapshot, tmp_path, runner, usernets
):
    torch.manual_seed(0)
    net = usernets.small(hidden=16).eval()
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    db = tmp_path / "s" / "a.db"
    db.parent.mkdir()
    res = runner.invoke(app, ["import", "--name", "mine", "--dataset", "digits", "--factory",
                              "usernets:small", "--kwargs", '{"hidden": 16}', "--weights",
                              str(tmp_path / "w.safetensors"), "--mean", "0.5", "--std",
                              "0.25", "--db", str(db)])  # fmt: skip
    assert res.exit_code == 0, res.output
    test = datasets.load("digits", "test")
    x, y = test.get(torch.arange(len(test)))
    with torch.no_grad():
        want = net((x - 0.5) / 0.25)  # the normalisation is folded into the stored model
    model, spec, row = load_model(open_db(db), "mine")
    with torch.no_grad():
        got = model(x)
    assert torch.allclose(got, want, atol=1e-6)
    assert row["clean_accuracy"] == pytest.approx(float((want.argmax(1) == y).float().mean()))
    assert spec.source == {"kind": "factory", "factory": "usernets:small", "kwargs": {"hidden": 16}}
    res = runner.invoke(app, ["attack", "--model", "mine", "--attack", "fgsm", "--eps", "0.1",
                              "--n", "12", "--db", str(db), "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    # the stored spec names the factory: a changed side file is refused before it is called
    meta = db.parent / "models" / "mine.json"
    meta.write_text(meta.read_text().replace("usernets:small", "usernets:not_a_module"))
    before = snapshot(db.parent)
    res = runner.invoke(app, ["attack", "--model", "mine", "--attack", "fgsm", "--eps", "0.2",
                              "--n", "12", "--db", str(db)])  # fmt: skip
    _one_error_line(res, "disagrees with the database", "source")
    assert snapshot(db.parent) == before


def _import_on_mnist(tmp_path, runner, net, flag, arch):
    """Import `net`'s weights as `arch` on mnist-5k: (store, loaded model, 4 test images)."""
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    db = tmp_path / "a.db"
    weights = str(tmp_path / "w.safetensors")
    res = runner.invoke(app, ["import", "--name", "m", "--dataset", "mnist-5k", flag, arch,
                              "--weights", weights, "--db", str(db)])  # fmt: skip
    assert res.exit_code == 0, res.output
    x, _ = datasets.load("mnist-5k", "test").get(torch.arange(4))
    return db, load_model(open_db(db), "m")[0], x


def _fit(net, steps: int, lr: float, channels: int = 1, batch_size: int = 64) -> None:
    """A few Adam steps on mnist-5k's training split, so the attacks have instances to
    break (an untrained net misclassifies nearly all, and every row would read 0 %)."""
    x, y = datasets.load("mnist-5k", "train").get(torch.arange(4000))
    opt = torch.optim.Adam(net.parameters(), lr)
    for _ in range(steps):
        batch = torch.randint(0, len(x), (batch_size,))
        loss = torch.nn.functional.cross_entropy(net(x[batch].expand(-1, channels, -1, -1)),
                                                 y[batch])  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()


def test_a_torchvision_resnet18_runs_through_carlini_eval_on_one_channel_mnist(tmp_path, runner):
    """The judged use: torchvision's resnet18(num_classes=10), trained on grey 28x28 digits
    seen as three channels, imported with its weights and evaluated with every row of
    carlini-eval on mnist-5k (measured: 93 % clean after 80 steps, about 25 s of attacks)."""
    import torchvision

    from advbench import suites

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10)
    _fit(net, steps=80, lr=1e-3, channels=3)
    db, model, x = _import_on_mnist(tmp_path, runner, net, "--torchvision", "resnet18")
    with torch.no_grad():  # the grey channel repeated to torchvision's three
        assert torch.allclose(model(x), net(x.expand(-1, 3, -1, -1)), atol=1e-5)
    store = open_db(db)
    assert store["models"].get("m")["clean_accuracy"] > 0.85
    res = runner.invoke(app, ["attack", "--model", "m", "--suite", "carlini-eval", "--scale",
                              "smoke", "--n", "4", "--db", str(db), "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    labels = {r[0] for r in store.execute(
        "select label from runs where model = 'm' and status = 'complete'")}  # fmt: skip
    assert labels == set(suites.labels(suites.load_suite("carlini-eval")))
    # the attacks see the adapter's gradients: unbounded PGD breaks all, noise none
    for label, broken in (("PGD-Linf unbounded (sanity)", 4), ("Noise-Linf (sanity)", 0)):
        got = store.execute(
            "select count(*), sum(s.success) from samples s join runs r on r.id = s.run_id "
            "where r.label = ? and r.eps = (select max(eps) from runs where label = ?)",
            [label, label],
        ).fetchone()
        assert got == (4, broken), (label, got)


def test_a_timm_model_takes_the_data_sets_channels(tmp_path, runner):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("resnet10t", pretrained=False, num_classes=10, in_chans=1).eval()
    _, model, x = _import_on_mnist(tmp_path, runner, net, "--timm", "resnet10t")
    with torch.no_grad():
        assert torch.allclose(model(x), net(x), atol=1e-5)


def test_convert_unwraps_a_checkpoint_and_refuses_a_code_payload(tmp_path, runner, usernets):
    net = usernets.small()
    state = {f"module.{k}": v for k, v in net.state_dict().items()}  # DataParallel's names
    torch.save({"state_dict": state, "epoch": 7}, tmp_path / "ck.pt")
    res = runner.invoke(app, ["convert", str(tmp_path / "ck.pt"), str(tmp_path / "ck.safetensors")])
    assert res.exit_code == 0, res.output
    from safetensors.torch import load_file

    got = load_file(str(tmp_path / "ck.safetensors"))
    assert got.keys() == net.state_dict().keys()
    assert all(torch.equal(got[k], v) for k, v in net.state_dict().items())

    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"state_dict": {"w": Payload()}}, fh)
    res = runner.invoke(
        app, ["convert", str(tmp_path / "evil.pt"), str(tmp_path / "e.safetensors")]
    )
    _one_error_line(res, "evil.pt", "weights_only=True")
    assert not marker.exists() and not (tmp_path / "e.safetensors").exists()
    res = runner.invoke(app, ["convert", str(tmp_path / "ck.pt"), str(tmp_path / "ck.safetensors")])
    _one_error_line(res, "exists")  # never overwrites


@pytest.mark.parametrize(
    "args, words",
    [
        (["--factory", "usernets:small"], ["ck.pt", "advbench convert"]),  # not safetensors
        (["--factory", "usernets:small", "--torchvision", "resnet18"], ["one of --factory"]),
        (["--timm", "resnet999x"], ["resnet999x"]),
        (["--factory", "nosuchpkg.nets:build"], ["nosuchpkg", "cannot be imported"]),
        (["--factory", "usernets:nothere"], ["no function 'nothere'"]),
        (["--factory", "usernets:not_a_module"], ["str", "not a torch.nn.Module"]),
        (["--factory", "os.system"], ["MODULE:FUNCTION"]),
        (["--factory", "usernets:small", "--kwargs", "{hidden: 3}"], ["not JSON"]),
        (["--factory", "usernets:small", "--kwargs", '{"hidden": 8}'], ["do not fit"]),
        (["--factory", "usernets:small", "--mean", "0.5"], ["--mean and --std together"]),
        (["--torchvision", "resnet999"], ["resnet999", "resnet18"]),
        (["--factory", "usernets:small", "--kwargs", '{"nope": 1}'], ["raised TypeError"]),
        (["--factory", "usernets:raises"], ["raised ValueError", "boom"]),
        (["--factory", "usernets:exits"], ["raised SystemExit"]),
        (["--factory", "usernets:small", "--in-channels", "0"], ["[1, 64]"]),
        (["--factory", "usernets:small", "--in-channels", "3"], ["fails on digits"]),
        (["--factory", "usernets:small", "--mean", "0.5", "--std", "nan"], ["finite"]),
        (["--factory", "usernets:small", "--mean", "inf", "--std", "1"], ["finite"]),
    ],
)
def test_bad_imports_exit_2_and_change_nothing(snapshot, tmp_path, runner, usernets, args, words):
    torch.save(usernets.small().state_dict(), tmp_path / "ck.pt")
    save_file(usernets.small().state_dict(), str(tmp_path / "ck.safetensors"))
    db = tmp_path / "s" / "a.db"
    db.parent.mkdir()
    open_db(db).close()
    before = snapshot(db.parent)
    weights = tmp_path / ("ck.pt" if words[0] == "ck.pt" else "ck.safetensors")
    res = runner.invoke(app, ["import", "--name", "m", "--dataset", "digits", "--weights",
                              str(weights), *args, "--db", str(db)])  # fmt: skip
    _one_error_line(res, *words)
    assert snapshot(db.parent) == before
    fresh = tmp_path / "fresh.db"  # a refused import makes no store
    res = runner.invoke(app, ["import", "--name", "m", "--dataset", "digits", "--weights",
                              str(weights), *args, "--db", str(fresh)])  # fmt: skip
    assert res.exit_code == 2 and not fresh.exists()


def test_weights_holding_nan_are_refused(tmp_path, runner, usernets):
    state = usernets.small().state_dict()
    state["1.weight"][0, 0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"))
    res = runner.invoke(app, ["import", "--name", "m", "--dataset", "digits", "--factory",
                              "usernets:small", "--weights", str(tmp_path / "nan.safetensors"),
                              "--db", str(tmp_path / "a.db")])  # fmt: skip
    _one_error_line(res, "'1.weight' holds NaN or inf")
    assert not (tmp_path / "a.db").exists()


@pytest.mark.parametrize(
    "content, out, words",
    [
        ({1: "t"}, "x.safetensors", ["key 1 is a int"]),
        ({"w": "sparse"}, "x.safetensors", ["sparse, not a dense tensor"]),
        ({"module.w": "t", "w": "t"}, "x.safetensors", ["both 'w'"]),
        (b"just text\n", "x.safetensors", ["refused by torch.load(weights_only=True)"]),
        ({"w": "t"}, "nodir/x.safetensors", ["does not exist"]),
        ({"w": "t"}, ".safetensors", ["a file name ending in .safetensors"]),
    ],
)
def test_convert_refuses_what_is_not_a_state_dict(tmp_path, runner, content, out, words):
    src = tmp_path / "in.pt"
    if isinstance(content, bytes):
        src.write_bytes(content)
    else:
        made = {k: (torch.eye(3).to_sparse() if v == "sparse" else torch.ones(2))
                for k, v in content.items()}  # fmt: skip
        torch.save(made, src)
    res = runner.invoke(app, ["convert", str(src), str(tmp_path / out)])
    _one_error_line(res, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pt"]


def test_a_robustbench_model_loads_from_its_model_dir(snapshot, tmp_path, runner, cifar_dir):
    """RobustBench's own zoo and loader on a checkpoint the test writes in RobustBench's
    layout (its `module.` prefix and {'state_dict': ...} wrapper, which the loader strips):
    the stored model predicts as the zoo's module with those weights, every command uses
    it, and a checkpoint carrying code is refused without running it."""
    from advbench.models.imported import _robustbench

    _robustbench()  # skips nothing: robustbench is in the dev extra
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    entry = model_dicts[BenchmarkDataset("cifar10")][ThreatModel("Linf")]["Wong2020Fast"]
    net = entry["model"]().eval()  # PreActResNet-18
    with torch.no_grad():  # BatchNorm statistics that are not the defaults, so they count
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    folder = tmp_path / "models" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}
    torch.save(wrapped, folder / "Wong2020Fast.pt")
    db = tmp_path / "s" / "a.db"
    db.parent.mkdir()
    args = ["import", "--name", "wong", "--dataset", "cifar10", "--robustbench", "Wong2020Fast",
            "--model-dir", str(tmp_path / "models"), "--data-dir", str(cifar_dir),
            "--db", str(db)]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    model, spec, row = load_model(open_db(db), "wong")
    test = datasets.load("cifar10", "test", data_dir=cifar_dir)
    x, y = test.get(torch.arange(len(test)))
    with torch.no_grad():
        want, got = net(x), model(x)
    assert torch.allclose(got, want, atol=1e-5)
    assert row["clean_accuracy"] == pytest.approx(float((want.argmax(1) == y).float().mean()))
    assert spec.source == {"kind": "robustbench", "name": "Wong2020Fast", "dataset": "cifar10",
                           "threat_model": "Linf"}  # fmt: skip
    res = runner.invoke(app, ["attack", "--model", "wong", "--attack", "fgsm", "--eps", "0.03",
                              "--n", "4", "--data-dir", str(cifar_dir), "--db", str(db),
                              "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output

    # refusals: one line, exit 2, nothing written
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil" / "cifar10" / "Linf"
    evil.mkdir(parents=True)
    with open(evil / "Wong2020Fast.pt", "wb") as fh:
        pickle.dump({"state_dict": {"w": Payload()}}, fh)
    before = snapshot(db.parent)
    for extra, words in (
        (["--model-dir", str(tmp_path / "evil")], ["Wong2020Fast.pt", "weights_only=True"]),
        (["--model-dir", str(tmp_path / "none")], ["not on disk", "downloads nothing"]),
        (["--threat-model", "L3"], ["'L3'", "Linf"]),
        (["--robustbench", "Nobody2099"], ["'Nobody2099'", "Wong2020Fast"]),
        (["--dataset", "mnist-5k"], ["cifar10, cifar100, imagenet", "mnist-5k"]),
        (["--weights", str(folder / "Wong2020Fast.pt")], ["give no --weights"]),
    ):
        swapped = list(args)
        for flag, value in zip(extra[::2], extra[1::2], strict=True):
            if flag in swapped:
                swapped[swapped.index(flag) + 1] = value
            else:
                swapped[1:1] = [flag, value]
        swapped[swapped.index("--name") + 1] = "other"
        _one_error_line(runner.invoke(app, swapped), *words)
        assert not marker.exists()
        assert snapshot(db.parent) == before


def test_an_imported_model_runs_through_carlini_eval(tmp_path, runner, usernets):
    """The judged use: the user's own module, fitted here on mnist-5k and imported from a
    safetensors file, evaluated with every row of carlini-eval; the unbounded-PGD sanity
    row breaks every instance, so the attacks see the imported module's gradients."""
    from advbench import suites

    torch.manual_seed(0)
    net = usernets.small(hidden=32, inputs=784)
    _fit(net, steps=150, lr=1e-2, batch_size=128)
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    db = tmp_path / "a.db"
    res = runner.invoke(app, ["import", "--name", "mine", "--dataset", "mnist-5k", "--factory",
                              "usernets:small", "--kwargs", '{"inputs": 784}', "--weights",
                              str(tmp_path / "w.safetensors"), "--db", str(db)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert load_model(open_db(db), "mine")[2]["clean_accuracy"] > 0.85
    res = runner.invoke(app, ["attack", "--model", "mine", "--suite", "carlini-eval", "--scale",
                              "smoke", "--n", "8", "--db", str(db), "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    store = open_db(db)
    labels = {r[0] for r in store.execute(
        "select label from runs where model = 'mine' and status = 'complete'")}  # fmt: skip
    assert labels == set(suites.labels(suites.load_suite("carlini-eval")))
    broken = store.execute(
        "select count(*), sum(s.success) from samples s join runs r on r.id = s.run_id "
        "where r.label = 'PGD-Linf unbounded (sanity)'"
    ).fetchone()
    assert broken == (8, 8)
