"""Summarise the last `mutmut run` per module and per function (killed / survived / no
tests / timeout) and list the survivors with their diffs, as markdown on stdout.

    .venv/bin/pip install mutmut
    .venv/bin/mutmut run [MUTANT NAMES]   # [tool.mutmut] in pyproject.toml
    .venv/bin/python benchmarks/mutation_report.py > /tmp/mutation-tables.md

The score is killed / (killed + survived + timeout): a mutant no selected test reaches
("no tests") is counted apart, since it says which code the fast tests do not cover.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict

MUTMUT = [sys.executable, "-m", "mutmut"]
NAME = re.compile(r"^\s*(?P<name>\S+)__mutmut_\d+: (?P<status>.+)$")


def results() -> list[tuple[str, str, str]]:
    out = subprocess.run([*MUTMUT, "results", "--all", "true"], capture_output=True, text=True)
    rows = []
    for line in out.stdout.splitlines():
        m = NAME.match(line)
        if not m:
            continue
        full = line.split(":")[0].strip()
        module, _, func = m["name"].partition(".x")
        rows.append((full, module, func.lstrip("_").replace("ǁ", ".") or "?", m["status"]))
    return rows


def diff(mutant: str) -> list[str]:
    out = subprocess.run([*MUTMUT, "show", mutant], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def main() -> None:
    rows = results()
    per_module: dict[str, Counter] = defaultdict(Counter)
    per_function: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for _, module, func, status in rows:
        per_module[module][status] += 1
        per_function[module, func][status] += 1

    def score(c: Counter) -> str:
        tried = c["killed"] + c["survived"] + c["timeout"]
        return f"{100 * c['killed'] / tried:.0f} %" if tried else "–"

    print("| module | killed | survived | timeout | no tests | score |")
    print("|---|---|---|---|---|---|")
    for module, c in sorted(per_module.items()):
        row = [c["killed"], c["survived"], c["timeout"], c["no tests"]]
        print(f"| {module} | " + " | ".join(map(str, row)) + f" | {score(c)} |")
    print()
    print("| function | killed | survived | timeout | no tests |")
    print("|---|---|---|---|---|")
    for (module, func), c in sorted(per_function.items()):
        if c["killed"] + c["survived"] + c["timeout"] == 0:
            continue
        row = [c["killed"], c["survived"], c["timeout"], c["no tests"]]
        print(f"| {module}.{func} | " + " | ".join(map(str, row)) + " |")
    print()
    print("## Survivors")
    for full, _, _, status in rows:
        if status == "survived":
            print(f"\n`{full}`\n```diff")
            print("\n".join(diff(full)))
            print("```")


if __name__ == "__main__":
    main()
