"""The report's query layer: what the tables read from the store, once per report.

`StoredRuns` loads the models, the runs with their counts (`store.RUNS`) and the
measurements, and matches a cell's role and run to them; `data_for` says which stored
data set stands for a table's data.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import sqlite_utils

from advbench import suites
from advbench.errors import BadInput
from advbench.report import nulls_as_none
from advbench.report.papers import (
    DATA,
    Cell,
    TableSpec,
    _same,
)
from advbench.store import RUNS, recency


class StoredRuns:
    """What the tables read, loaded once per report: the models, runs with their counts and
    measurements (a read cache, not the store)."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self.models = [dict(r) for r in db.query("select * from models order by created_at")]
        runs = pd.read_sql_query(RUNS, db.conn)
        nulls_as_none(runs, ("targeted", "label", "suite", "source_model", "scale"))
        self.runs = runs
        self._roles: dict[tuple[str, str, str], list[dict]] = {}
        self._recipes: dict[tuple, dict | None] = {}
        self.measurements = (
            [dict(r) for r in db.query("select * from measurements order by created_at")]
            if "measurements" in db.table_names()
            else []
        )

    def role_models(self, spec: TableSpec, data: str, key: str) -> list[dict]:
        """Stored models matching a role, newest first (matched once per report)."""
        ident = (spec.paper, data, key)
        if ident not in self._roles:
            role = spec.roles[(data, key)]
            self._roles[ident] = [m for m in reversed(self.models) if role.matches(m, data)]
        return self._roles[ident]

    def measurement(self, model: dict, metric: str, run_id: str | None = None) -> dict | None:
        """The newest measurement of this model (its current weights), at `run_id`'s kept
        examples or, without one, at clean test points, by the metric's current definition."""
        from advbench.measurements import REVISION

        found = [
            m
            for m in self.measurements
            if (m["model"], m["metric"], m["run_id"]) == (model["name"], metric, run_id)
            and m["model_checksum"] == model["checksum"]
            and json.loads(m["config"] or "{}").get("revision") == REVISION.get(metric)
        ]
        return found[-1] if found else None

    def current(self, run) -> bool:
        """Whether a suite run was made with its suite row's parameters as they are now at
        its scale: a row whose recipe changed (a faithful-cells fix) leaves its older runs
        stale, so they fill no cell and `reproduce` runs the row again."""
        return suites.is_current(run.suite, run.label, run.scale, run.attack, run.config,
                                 self._recipes)  # fmt: skip

    def matching_runs(
        self, spec: TableSpec, cell: Cell, model: str, label=None, stale: bool = False
    ) -> pd.DataFrame:
        """The runs that fill `cell` for `model`, best first; `stale`: only those that
        would, but for a suite recipe changed since they ran."""
        runs = self.runs[self.runs["model"] == model]
        match = dict(cell.match)
        match.pop("labels", None)
        if label is not None:
            match["label"] = label
        for key, want in match.items():
            if key == "eps":
                runs = runs[_mask(runs, [_same_eps(e, want) for e in runs["eps"]])]
            elif key == "source_role":
                names = {m["name"] for m in self.role_models(spec, cell.data, want)}
                runs = runs[runs["source_model"].isin(names)]
            elif key == "params":  # the attack's stored parameters
                runs = runs[_mask(runs, [_params_match(c, want) for c in runs["config"]])]
            elif key == "targeted":
                runs = runs[_mask(runs, [t == want for t in runs["targeted"]])]
            else:
                runs = runs[runs[key] == want]
        runs = runs[(runs["n"] > 0) | (runs["init_failed"] > 0)]
        if not suites.allows_shortcuts(spec.suite):
            # the paper attacks every ε afresh (FGSM is not monotone in ε): a run that took
            # what a smaller ε broke (the ε-chain shortcut) is not its protocol's number
            runs = runs[_mask(runs, ['"shortcut_from"' not in (c or "") for c in runs["config"]])]
        fresh = _mask(runs, [self.current(r) for r in runs.itertuples()])
        runs = runs[~fresh] if stale else runs[fresh]
        # The newest complete run first; a partial one only where none is complete.
        keys = [recency(*r) for r in zip(runs["status"], runs["finished_at"],
                                          runs["started_at"], strict=True)]  # fmt: skip
        return runs.iloc[sorted(range(len(runs)), key=keys.__getitem__, reverse=True)]


def _params_match(config: str | None, want: dict[str, Any]) -> bool:
    params = json.loads(config or "{}").get("params", {})
    return all(_same(params.get(k), v) for k, v in want.items())


def _mask(df: pd.DataFrame, values: list[bool]) -> pd.Series:
    """A boolean row mask (a plain empty list would select no columns instead)."""
    return pd.Series(values, index=df.index, dtype=bool)


def data_for(data: str, data_dir=None, scale: str | None = None) -> str | None:
    """The first stored-data-set name for a table's data that is on disk, else None. At
    full scale the embedded MNIST subset does not do (its 1,000 test images are fewer than
    fidel's 1,024 samples, and madnet needs 1,000 the model classifies right)."""
    from advbench import data as datasets

    for name in DATA[data]:
        if scale == "full" and name == "mnist-5k":
            continue
        spec = datasets.spec(name)
        if not spec.needs_dir:
            return name
        try:
            datasets.load(name, "test", data_dir=data_dir)
        except BadInput:
            continue
        return name
    return None


def _same_eps(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return math.isinf(a) and math.isinf(b)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
