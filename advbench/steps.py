"""A plan step as data: which command, with which arguments.

`reproduce`, `report --missing` and `demo` plan work as steps. A step is typed: its kind
(train, harden, attack, measure) and the keyword arguments of the `advbench.api` function
that does it (`api.run_step` executes it). Its command line is rendered from it, for the
paper's page, `--dry-run` and `report --missing`, and runs through the CLI to the same
stored result (`tests/test_steps.py`). Plan files give recipe fragments as command-line
flags (`"harden": ["--defense", "brelu", "--from-scratch"]`); `parse` reads them into
arguments with the grammar below, so a step never holds unparsed text.

The grammar is the commands' own (flag = `--` + the argument's name with `-` for `_`);
only the spellings that differ are written out: `--param k=v` (repeatable) is `params`,
`--eps 0.1,0.3` a list of floats, `--no-shortcuts` is `shortcuts=False`, `--model` of
`measure` is `models`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advbench.errors import BadInput, unknown

_COMMON = {"db": "path", "data_dir": "path", "device": "str", "seed": "int", "force": "flag"}
# Per kind: argument -> how it is written on the command line.
GRAMMAR: dict[str, dict[str, str]] = {
    "train": {
        "dataset": "str", "arch": "str", "activation": "str", "activation_param": "float",
        "epochs": "int", "batch_size": "int", "optimizer": "str", "lr": "float",
        "weight_decay": "float", "name": "str", "download": "flag", **_COMMON,
    },
    "harden": {
        "model": "str", "defense": "str", "params": "params", "from_scratch": "flag",
        "epochs": "int", "batch_size": "int", "recipe": "str", "optimizer": "str",
        "lr": "float", "weight_decay": "float", "name": "str", **_COMMON,
    },
    "attack": {
        "model": "list", "attack": "str", "suite": "str", "only": "list", "eps": "eps",
        "params": "params", "scale": "str", "n": "int", "batch_size": "int",
        "targeted": "str", "source_model": "str", "proxy": "str", "proxy_epochs": "int",
        "only_correct": "flag", "gradient": "str", "shortcuts": "negflag",
        "cascade": "flag", "executor": "str", "address": "str", **_COMMON,
    },
    "measure": {
        "models": "list", "metric": "str", "run": "str", "n": "int", **_COMMON,
    },
}  # fmt: skip
_FLAG_OF = {("measure", "models"): "--model", ("harden", "params"): "--param",
            ("attack", "params"): "--param"}  # fmt: skip


def flag_of(kind: str, key: str) -> str:
    if GRAMMAR[kind][key] == "negflag":
        return "--no-" + key.replace("_", "-")
    return _FLAG_OF.get((kind, key), "--" + key.replace("_", "-"))


@dataclass(frozen=True)
class Step:
    """One command: `kind` and the keyword arguments of its API function, in the order
    its command line shows them."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in GRAMMAR:
            raise unknown("step kind", self.kind, GRAMMAR)
        listed = ("list", "params")  # one name where a list goes: a list of one
        object.__setattr__(self, "args", {
            k: [v] if GRAMMAR[self.kind].get(k) in listed and isinstance(v, str) else v
            for k, v in self.args.items()
        })  # fmt: skip
        bad = [k for k in self.args if k not in GRAMMAR[self.kind]]
        if bad:
            raise BadInput(f"{self.kind} step: unknown argument(s) {', '.join(bad)}; valid: "
                           f"{', '.join(GRAMMAR[self.kind])}")  # fmt: skip

    def with_args(self, **more: Any) -> Step:
        """The same step with more (or changed) arguments; None leaves one out."""
        args = {**self.args, **more}
        return Step(self.kind, {k: v for k, v in args.items() if v is not None})

    @property
    def argv(self) -> list[str]:
        out = [self.kind]
        for key, value in self.args.items():
            how, flag = GRAMMAR[self.kind][key], flag_of(self.kind, key)
            if value is None or (how in ("flag", "negflag") and value is (how == "negflag")):
                continue  # a flag's default: not written
            if how in ("flag", "negflag"):
                out.append(flag)
            elif how == "list":
                out += [a for v in value for a in (flag, str(v))]
            elif how == "params":
                pairs = value.items() if isinstance(value, dict) else [p.split("=", 1)
                                                                       for p in value]  # fmt: skip
                out += [a for k, v in pairs for a in (flag, f"{k}={v}")]
            elif how == "eps":
                out += [flag, ",".join(f"{e:g}" for e in value)]
            else:
                out += [flag, str(value)]
        return out

    @property
    def text(self) -> str:
        return "advbench " + " ".join(shlex.quote(a) for a in self.argv)

    @classmethod
    def parse(cls, argv: list[str]) -> Step:
        """A step from a command line's words (without `advbench`)."""
        if not argv:
            raise BadInput("an empty command is not a step")
        kind, *rest = argv
        return cls(kind, parse(kind, rest))


def parse(kind: str, words: list[str]) -> dict[str, Any]:
    """Arguments of `kind` from command-line words, in their order (`--param` pairs stay
    strings: the API parses them as the command line does)."""
    if kind not in GRAMMAR:
        raise unknown("step kind", kind, GRAMMAR)
    by_flag = {flag_of(kind, key): key for key in GRAMMAR[kind]}
    args: dict[str, Any] = {}
    i = 0
    while i < len(words):
        flag = words[i]
        key = by_flag.get(flag)
        if key is None:
            raise unknown(f"{kind} option", flag, sorted(by_flag))
        how = GRAMMAR[kind][key]
        if how in ("flag", "negflag"):
            args[key] = how == "flag"
            i += 1
            continue
        if i + 1 >= len(words):
            raise BadInput(f"{kind} {flag} needs a value")
        value = words[i + 1]
        i += 2
        if how in ("list", "params"):
            args.setdefault(key, []).append(value)
        elif how in ("eps", "int", "float"):
            try:
                args[key] = ([float(v) for v in value.split(",")] if how == "eps"
                             else int(value) if how == "int" else float(value))  # fmt: skip
            except ValueError:
                raise BadInput(f"{kind} {flag} {value!r} is not a number") from None
        elif how == "path":
            args[key] = Path(value)
        else:
            args[key] = value
    return args


__all__ = ["GRAMMAR", "Step", "flag_of", "parse"]
