"""Plan steps are data the API executes; their command lines, rendered from them, run
through the CLI to the same stored results (same model checksums, same run ids)."""

import inspect
import shlex
import typing

import pytest

import advbench.api as ab
from advbench import cli
from advbench.errors import BadInput
from advbench.report.papers import PAPERS
from advbench.reproduce import plan
from advbench.steps import GRAMMAR, Step, flag_of, parse
from advbench.store import open_db


@pytest.mark.parametrize("scale", ["smoke", "cpu", "full"])
def test_every_planned_step_renders_and_parses_back_to_itself(tmp_path, scale):
    seen = 0
    for paper in PAPERS:
        for planned in plan(None, paper, scale, db_path=tmp_path / "x.db").steps:
            step = planned.command
            assert Step.parse(shlex.split(step.text)[1:]) == step, step.text
            assert planned.text == step.text and step.args["db"] == tmp_path / "x.db"
            seen += 1
    # every paper plans its MNIST part from an empty store (at full scale only data sets
    # from --data-dir do, and none is on disk here)
    assert seen > 20 if scale != "full" else seen == 0


def _options(kind: str) -> dict[str, object]:
    """A command's flags (each spelling) -> the option's default."""
    (info,) = [c for c in cli.app.registered_commands
               if (c.name or c.callback.__name__) == kind]  # fmt: skip
    hints = typing.get_type_hints(info.callback, include_extras=True)
    out = {}
    for name, param in inspect.signature(info.callback).parameters.items():
        option = hints[name].__metadata__[0]
        # Annotated options name their flag first: typer keeps it as the option's default
        named = [option.default] if isinstance(option.default, str) else []
        decls = [d for d in [*named, *(option.param_decls or ())] if d.startswith("--")]
        for decl in decls or ["--" + name.replace("_", "-")]:
            for flag in decl.split("/"):
                out[flag] = param.default
    return out


def test_the_grammar_is_the_commands_own():
    """Each argument of a step kind is an option of its command with the same default in
    the API as on the command line, so a step the API runs with an argument left out is
    its command line without that flag."""
    functions = {"train": ab.train, "harden": ab.harden, "attack": ab.evaluate,
                 "measure": ab.measure}  # fmt: skip
    for kind, keys in GRAMMAR.items():
        options = _options(kind)
        api = inspect.signature(functions[kind]).parameters
        for key in keys:
            flag = flag_of(kind, key)
            assert flag in options, (kind, key, flag)
            default = api[key].default
            if default is not inspect.Parameter.empty and key != "model":
                assert options[flag] == default, (kind, key, options[flag], default)


def test_unknown_arguments_and_flags_are_refused():
    with pytest.raises(BadInput, match="unknown argument"):
        Step("train", {"epocs": 3})
    with pytest.raises(BadInput, match="unknown step kind"):
        Step("fly", {})
    with pytest.raises(BadInput, match="unknown harden option '--epocs'"):
        parse("harden", ["--epocs", "3"])
    with pytest.raises(BadInput, match="train --epochs 'x' is not a number"):
        parse("train", ["--epochs", "x"])
    # one name where a list goes is a list of one (not one flag per character)
    assert Step("attack", {"model": "std"}).text == "advbench attack --model std"


def test_a_rendered_step_runs_through_the_cli_to_the_same_stored_results(tmp_path, runner):
    """Each kind of step, run by the API into one store and as its rendered command line
    into another: the same models (checksums, configurations), the same run ids, the same
    measurement."""
    a, b = tmp_path / "a" / "a.db", tmp_path / "b" / "b.db"
    a.parent.mkdir()
    b.parent.mkdir()
    steps = [
        Step("train", {"dataset": "digits", "arch": "madry-mnist", "name": "s", "epochs": 1}),
        Step("harden", {"model": "s", "defense": "jacobian", "params": ["lambda=0.1"],
                        "epochs": 1, "name": "s-jac"}),
        Step("attack", {"model": ["s", "s-jac"], "suite": "carlini-eval", "scale": "smoke",
                        "only": ["FGSM", "DeepFool-L2"], "n": 6}),
        Step("attack", {"model": ["s-jac"], "attack": "pgd-linf", "eps": [0.05, 0.1],
                        "params": ["steps=5"], "n": 6, "shortcuts": False,
                        "source_model": "s"}),
        Step("measure", {"models": ["s"], "metric": "loss-sensitivity", "n": 8}),
    ]  # fmt: skip
    for step in steps:
        ab.run_step(step.with_args(db=a))
        words = shlex.split(step.with_args(db=b).text)
        assert words[0] == "advbench"
        res = runner.invoke(cli.app, words[1:])
        assert res.exit_code == 0, (step.text, res.output)
    one, two = open_db(a), open_db(b)
    models = "select name, checksum, config_hash, clean_accuracy from models order by name"
    assert list(one.query(models)) == list(two.query(models))
    runs = "select id, status, n from runs order by id"
    assert list(one.query(runs)) == list(two.query(runs)) and len(list(one.query(runs))) >= 6
    values = "select model, metric, value from measurements"
    assert list(one.query(values)) == list(two.query(values))
