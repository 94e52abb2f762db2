"""What `advbench report` is asked and what it writes: the request, the rules of which
options go together, and each mode's output (text for the terminal or files).

The command line builds one `ReportRequest`, calls `.checked()` and hands it to the one
function of its mode; what comes back is data for the terminal's renderers or the paths
written. A mode's formats are listed once, in `FORMATS`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advbench import formats
from advbench.api._common import _read
from advbench.api.report import check_output_dir, checks, compare, figures, summary, tables
from advbench.errors import BadInput
from advbench.files import write_atomic

FORMATS = formats.BY_MODE  # each mode's formats (advbench/formats.py)
_SUFFIX = {"table": "md", "markdown": "md", "latex": "tex"}


@dataclass(frozen=True)
class ReportRequest:
    """`advbench report`'s options. One mode is chosen, in this order: --claims, --controls,
    --budgets, --compare, --paper,
    --checks, --format html, --figure (without --missing), --list, --missing, --table ID,
    else the summary."""

    table: str | None = "summary"
    figure: str | None = None
    paper: str | None = None
    claims: str | None = None
    controls: str | None = None
    budgets: str | None = None
    compare: tuple[str, str] | None = None
    checks: str | None = None
    list: bool = False
    missing: bool = False
    scale: str | None = None
    models: tuple[str, ...] = ()
    format: str = "table"
    output: Path | None = None
    verbose: bool = False
    data_dir: Path | None = None
    db: Any = None

    @property
    def mode(self) -> str:
        chosen = [("claims", self.claims is not None), ("controls", self.controls is not None),
                  ("budgets", self.budgets is not None),
                  ("compare", self.compare is not None),
                  ("paper", self.paper is not None),
                  ("checks", self.checks is not None), ("html", self.format == "html"),
                  ("figures", self.figure is not None and not self.missing),
                  ("list", self.list), ("missing", self.missing),
                  ("tables", self.table not in ("summary", None))]  # fmt: skip
        return next((mode for mode, on in chosen if on), "summary")

    def checked(self) -> ReportRequest:
        """The request, or BadInput naming an option the chosen mode would ignore or a
        format it cannot write."""
        flags = [("--claims", self.claims is not None), ("--controls", self.controls is not None),
                 ("--budgets", self.budgets is not None),
                 ("--compare", self.compare is not None),
                 ("--paper", self.paper is not None),
                 ("--checks", self.checks is not None), ("--missing", self.missing),
                 ("--figure", self.figure is not None),
                 ("--table", self.table not in (None, "summary"))]  # fmt: skip
        shown = next((name for name, on in flags if on), "the summary")
        if self.scale is not None and not self.missing:
            raise BadInput(f"--scale {self.scale} sets the scale of the commands --missing "
                           f"prints; it does not apply to {shown}")  # fmt: skip
        if self.models and shown not in ("the summary", "--figure"):
            raise BadInput(
                f"--model picks models for the summary and --figure curves; it "
                f"does not apply to {shown} (--checks MODEL takes one model)"
            )
        if self.verbose and (shown not in ("--table", "the summary") or self.format != "table"):
            raise BadInput("--verbose lists the runs behind each cell of a paper table, or "
                           "widens the summary to one table per attack, in the terminal "
                           "(--format table); it does not apply to "
                           f"{shown}" + ("" if shown not in ("--table", "the summary") else
                                         f" with --format {self.format}"))  # fmt: skip
        if self.output is not None and shown in ("--claims", "--controls", "--budgets",
                                                 "--missing"):
            raise BadInput(f"--output does not apply to {shown}: it prints to the terminal "
                           "(redirect it to a file)")  # fmt: skip
        mode = self.mode
        valid = FORMATS[mode]
        if mode == "html" or self.format in valid:
            return self
        if mode in ("claims", "controls", "budgets"):  # it printed markdown whatever was asked
            raise BadInput(f"--format {self.format} is not a format of --{mode}; valid "
                           f"choices: {', '.join(valid)}")  # fmt: skip
        if mode == "paper":
            raise BadInput(f"--format {self.format} is not a page format; valid choices: "
                           f"{', '.join(valid)}")  # fmt: skip
        what = {
            "checks": "a checklist format",
            "figures": "a figure format",
            "compare": "a comparison format",
        }.get(mode)
        if what is not None:
            shown_valid = [f for f in valid if f != "table"] if mode == "figures" else valid
            raise BadInput(f"--format {self.format} is not {what}; valid choices: "
                           f"{', '.join(shown_valid)}")  # fmt: skip
        if self.format not in FORMATS["tables"]:
            raise BadInput(f"unknown format {self.format!r}; valid choices: "
                           f"{', '.join(FORMATS['tables'])}")  # fmt: skip
        raise BadInput(f"--format {self.format} is for paper tables; the summary takes "
                       f"{', '.join(valid)}")  # fmt: skip


@dataclass
class Output:
    """A mode's result: what the terminal renders (`view`), else `text` for stdout, and the
    files written (`--output`)."""

    view: Any = None
    text: str | None = None
    written: list[Path] = field(default_factory=list)


def _write(output: Path, stem: str, fmt: str, text: str) -> Path:
    path = Path(output) / f"{stem}.{_SUFFIX.get(fmt, fmt)}"
    write_atomic(path, text)
    return path


@dataclass
class TableView:
    spec: Any  # report.papers.TableSpec
    results: list
    caption: list[str]


def report_tables(request: ReportRequest) -> Output:
    """`report --table ID`: a paper's tables, as views for the terminal, one text (a tidy
    CSV or JSON list for several tables), or one file each under --output."""
    import pandas as pd

    from advbench.report import table_views as views
    from advbench.report import tables as tab

    tab.select(request.table)  # an unknown id is refused before anything is read or made
    if request.output is not None:
        check_output_dir(request.output, request.db)
    database = _read(request.db)
    evaluated = tables(request.table, db=database)
    fmt, out = request.format, Output()
    if request.output is None and fmt in ("csv", "json") and len(evaluated) > 1:
        if fmt == "csv":
            out.text = pd.concat([views.to_frame(r) for _, r in evaluated]).to_csv(index=False)
        else:
            docs = [views.as_json(spec, results, database) for spec, results in evaluated]
            out.text = json.dumps(docs, ensure_ascii=False, indent=1) + "\n"
        return out
    if request.output is None and fmt == "table":
        out.view = [TableView(spec, results, views.caption(spec, results, database))
                    for spec, results in evaluated]  # fmt: skip
        return out
    texts = [(spec, views.render(spec, results, "markdown" if fmt == "table" else fmt, database))
             for spec, results in evaluated]  # fmt: skip
    if request.output is None:
        out.text = "".join(text for _, text in texts)
    else:
        out.written = [_write(request.output, spec.id.replace(":", "_"), fmt, text)
                       for spec, text in texts]  # fmt: skip
    return out


def report_summary(request: ReportRequest) -> Output:
    """`report` alone: the summary pivot of the stored runs (a view for the terminal,
    markdown or one CSV row per run), printed or written as summary.md / summary.csv."""
    from advbench import report as rep

    database = _read(request.db)
    if request.output is not None:  # before any work: a file (a database) is never written
        check_output_dir(request.output, request.db)
    models = list(request.models) or None
    frame = summary(models, db=database)  # an unknown --model is refused before any write
    if request.format == "table" and request.output is None:
        if not request.verbose:  # one compact table where it fits (up to 4 models)
            from advbench.report.compact import compact

            view = compact(database, models)
            if view is not None:
                return Output(view=view)
        return Output(view=rep.summary_view(database, models))
    if request.format == "csv":
        cols = ["model", "defense", "arch", "dataset", "attack", "norm", "eps", "n", "robust",
                "accuracy", "ci_low", "ci_high", "seed", "scale", "status", "id"]  # fmt: skip
        text = rep.run_results(database, models)[cols].to_csv(index=False)
    else:
        text = rep.render(frame, "markdown", rep.provenance_line(database, models))
        text += rep.optimality_markdown(database, models)
    if request.output is None:
        return Output(text=text)
    fmt = "csv" if request.format == "csv" else "markdown"
    return Output(written=[_write(request.output, "summary", fmt, text)])


@dataclass
class ChecksView:
    model: str
    head: str  # the tally line
    verdicts: list  # checks.Verdict


def report_checks(request: ReportRequest) -> Output:
    """`report --checks MODEL`: the checklist's verdicts with their numbers."""
    import pandas as pd

    from advbench import checks as chk

    model = request.checks
    verdicts, read = checks(model, db=request.db)
    counts = {s: sum(v.status == s for v in verdicts) for s in ("pass", "warn", "fail", "skip")}
    tally = ", ".join(f"{v} {k}" for k, v in counts.items())
    head = f"Evaluation checklist for {model}: {tally} (from {read} stored runs)"
    fmt = request.format
    if fmt == "table" and request.output is None:
        return Output(view=ChecksView(model, head, verdicts))
    if fmt == "json":
        text = json.dumps({"model": model, "summary": head, "checks": chk.as_dicts(verdicts)},
                          ensure_ascii=False, indent=1) + "\n"  # fmt: skip
    elif fmt == "csv":
        text = pd.DataFrame(chk.as_dicts(verdicts)).to_csv(index=False)
    else:
        from advbench.report import render

        text = render(pd.DataFrame(chk.as_dicts(verdicts)), "markdown", head)
    if request.output is None:
        return Output(text=text)
    check_output_dir(request.output, request.db)
    return Output(written=[_write(request.output, f"checks_{model}", fmt, text)])


def report_compare(request: ReportRequest) -> Output:
    """`report --compare A B`: A − B on shared instances, row by row (a view for the
    terminal; markdown, csv or json printed or written as compare_A_B.EXT)."""
    from advbench.report import compare as cmp

    if request.output is not None:
        check_output_dir(request.output, request.db)
    a, b = request.compare
    found = compare(a, b, db=request.db)
    fmt = request.format
    if fmt == "table" and request.output is None:
        return Output(view=found)
    if fmt == "json":
        doc = {"a": a, "b": b, "caption": found.caption(), "unshared": found.unshared,
               "rows": json.loads(found.frame().to_json(orient="records"))}  # fmt: skip
        text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    elif fmt == "csv":
        text = found.frame().to_csv(index=False)
    else:
        text = cmp.markdown(found)
    if request.output is None:
        return Output(text=text)
    return Output(written=[_write(request.output, f"compare_{a}_{b}", fmt, text)])


def report_figures(request: ReportRequest) -> Iterator[tuple[Any, list[Path]]]:
    """`report --figure`: each figure's data and the PNG/SVG files written for it, one at
    a time as each is drawn. Ids, models and the folder are checked before the first."""
    from advbench.report import drawing
    from advbench.report import figures as figs
    from advbench.store import default_db_path

    formats = figs.FIGURE_FORMATS if request.format == "table" else (request.format,)
    output = request.output
    target = (
        output
        if output is not None
        else (Path(request.db) if request.db is not None else default_db_path()).parent / "figures"
    )
    # ids, models and the curves' models are checked here, before a folder is made
    drawn = figures(request.figure, models=list(request.models) or None,
                    data_dir=request.data_dir, db=request.db)  # fmt: skip
    if output is None and target.exists() and not target.is_dir():
        raise BadInput(f"{target} (the default figure folder) is a file; give --output DIR")
    if output is not None:
        check_output_dir(target, request.db)
    else:
        target.mkdir(exist_ok=True)

    def each():
        for fd in drawn:
            yield fd, drawing.write(drawing.draw(fd), target, fd.id.replace(":", "_"), formats)

    return each()


__all__ = [
    "FORMATS", "ChecksView", "Output", "ReportRequest", "TableView", "report_checks",
    "report_compare",
    "report_figures", "report_summary", "report_tables",
]  # fmt: skip
