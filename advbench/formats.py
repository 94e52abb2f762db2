"""Every output format advbench writes, listed once: what each command and report mode
takes (`report`'s request checks against `BY_MODE`), and the renderers' own lists are
these names.

"table" is the terminal's rendering (rich; tab-separated lines in a pipe for listings).
"""

LISTING = ("table", "csv", "json")  # advbench models, advbench runs
SUMMARY = ("table", "markdown", "csv")  # advbench report
TABLES = ("table", "markdown", "csv", "latex", "json")  # report --table
FIGURES = ("png", "svg")  # report --figure (files)
CHECKS = ("table", "markdown", "csv", "json")  # report --checks
COMPARE = ("table", "markdown", "csv", "json")  # report --compare A B
PAGE = ("markdown", "html")  # report --paper, reproduce --page
# report --claims / --controls / --budgets: csv and json one flat record per row, unrounded
VERDICTS = ("table", "markdown", "csv", "json")

# `advbench report`'s modes; for figures "table" means every figure format.
BY_MODE: dict[str, tuple[str, ...]] = {
    "claims": VERDICTS,
    "controls": VERDICTS,
    "budgets": VERDICTS,
    "compare": COMPARE,
    "paper": PAGE,
    "checks": CHECKS,
    "html": ("html",),
    "figures": ("table", *FIGURES),
    "list": TABLES,
    "missing": TABLES,
    "tables": TABLES,
    "summary": SUMMARY,
}

__all__ = ["BY_MODE", "CHECKS", "COMPARE", "FIGURES", "LISTING", "PAGE", "SUMMARY", "TABLES",
           "VERDICTS"]
