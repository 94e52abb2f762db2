"""advbench as a library: what each command does, for notebooks and scripts.

The command line parses flags, calls one function here and prints what it returns; every
piece of orchestration (which models, which suite rows, proxies, transfer sources) lives
here or below. Each function takes `db` as a path, an open store or None (the default
store, `$ADVBENCH_DB` or results/advbench.db) and records its work there as the commands
do. Inputs are images in [0, 1]; models return logits.

    import advbench.api as ab

    ab.train(name="std", dataset="digits", arch="madry-mnist", epochs=4)
    ab.harden("std", defense="jacobian", params={"lambda": 0.05})
    ev = ab.evaluate(["std", "std+jacobian"], suite="carlini-eval", scale="smoke")
    ev.frame()                       # one row per run: accuracy, n, 95 % interval, ...
    ab.evaluate(my_module, dataset="digits", attack="pgd-linf", eps=[0.1, 0.3]).frame()
    ab.models(); ab.runs()           # pandas DataFrames of what is stored

Bad input raises `advbench.errors.BadInput` with the one line the CLI prints.
"""

from advbench.api._common import (
    PAPERS,
    check_scale,
    defense_settings,
    registry,
    store_path,
)
from advbench.api.evaluate import (
    Evaluation,
    ModelResult,
    evaluate,
)
from advbench.api.models import (
    convert,
    harden,
    import_model,
    latest_undefended,
    load,
    measure,
    measure_text,
    merge,
    model_rows,
    models,
    register_module,
    run_rows,
    runs,
    train,
)
from advbench.api.report import (
    budgets,
    check_output_dir,
    checks,
    claims,
    compare,
    controls,
    figures,
    html_report,
    listing,
    missing,
    optimality,
    page,
    summary,
    table,
    tables,
)
from advbench.api.report_output import (
    FORMATS,
    ChecksView,
    Output,
    ReportRequest,
    TableView,
    report_checks,
    report_compare,
    report_figures,
    report_summary,
    report_tables,
)
from advbench.api.workflows import (
    Reproduced,
    browse,
    demo,
    reproduce,
    run_step,
)

__all__ = [
    "PAPERS",
    "FORMATS",
    "ChecksView",
    "Output",
    "ReportRequest",
    "TableView",
    "report_checks",
    "report_compare",
    "report_figures",
    "report_summary",
    "report_tables",
    "Evaluation",
    "ModelResult",
    "Reproduced",
    "browse",
    "budgets",
    "check_output_dir",
    "check_scale",
    "checks",
    "claims",
    "controls",
    "compare",
    "convert",
    "defense_settings",
    "demo",
    "evaluate",
    "figures",
    "harden",
    "html_report",
    "import_model",
    "latest_undefended",
    "listing",
    "load",
    "measure",
    "measure_text",
    "merge",
    "missing",
    "model_rows",
    "models",
    "optimality",
    "page",
    "register_module",
    "registry",
    "reproduce",
    "run_rows",
    "run_step",
    "store_path",
    "runs",
    "summary",
    "table",
    "tables",
    "train",
]
