"""The house's shape: layers that import only downward, no circles, and the commands that
only read a store import no torch (ARCHITECTURE.md; the contract is in pyproject.toml)."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

from advbench.store import open_db

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_import_contract_holds():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 kept, 0 broken" in res.stdout


@pytest.mark.parametrize(
    "module, line, named",
    [
        # the ground importing the CLI: two layers up
        ("errors.py", "import advbench.cli  # noqa", "advbench.errors -> advbench.cli"),
        # the report importing a workflow (the page's old home did)
        ("report/html.py", "from advbench import reproduce  # noqa",
         "advbench.report.html -> advbench.reproduce"),
    ],
)  # fmt: skip
def test_a_planted_upward_import_fails_naming_it(tmp_path, module, line, named):
    shutil.copytree(ROOT / "advbench", tmp_path / "advbench",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "advbench" / module
    target.write_text(target.read_text() + "\n" + line + "\n")
    res = _lint(tmp_path)
    assert res.returncode != 0
    assert named in res.stdout, res.stdout


def test_no_module_imports_itself_through_others():
    """Zero circles at module level, packages included (a package's __init__ and its
    modules too: the acyclic contract only compares siblings)."""
    graph = grimp.build_graph("advbench")
    circles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                circles.append(f"{module} -> {imported} -> ... -> {module}")
    assert not circles, "\n".join(circles)


def test_the_cli_is_imported_by_nothing_and_the_api_only_by_the_cli():
    graph = grimp.build_graph("advbench")

    def importers(package: str) -> set[str]:
        inside = lambda m: m == package or m.startswith(package + ".")  # noqa: E731
        return {
            m for target in graph.modules if inside(target)
            for m in graph.find_modules_that_directly_import(target) if not inside(m)
        }  # fmt: skip

    assert importers("advbench.cli") == {"advbench.__main__"}
    assert importers("advbench.api") and all(
        m.startswith("advbench.cli.") for m in importers("advbench.api")
    ), importers("advbench.api")


def test_no_module_passes_500_lines_without_saying_why():
    """A module one can read in a sitting; a longer one says why in its docstring."""
    import ast

    long = []
    for path in sorted((ROOT / "advbench").rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 500:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "Over 500 lines:" not in doc:
                long.append(f"{path.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    assert not long, long


def _no_torch(args: list[str], db: Path) -> list[str]:
    """The modules of torch, foolbox and ART a command imported (run in a fresh process)."""
    code = textwrap.dedent(f"""
        import sys
        from advbench.cli import main
        sys.argv = ["advbench", "report", *{args!r}, "--db", {str(db)!r}]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "foolbox", "art"))
        print("HEAVY", heavy[:5])
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[:3000]
    line = next(s for s in res.stdout.splitlines() if s.startswith("HEAVY"))
    return eval(line[len("HEAVY ") :])


@pytest.mark.parametrize(
    "args",
    [[], ["--table", "zantedeschi:2"], ["--claims", "zantedeschi"], ["--list"],
     ["--controls", "zantedeschi"]],
    ids=["summary", "table", "claims", "list", "controls"],
)
def test_reading_a_store_imports_no_torch(db_copy, args):
    """`report` on a store with runs is a query and a table: torch (seconds to import)
    stays out of it."""
    db = open_db(db_copy)
    model = db["models"].get("std")
    db["runs"].insert({"id": "r1", "model": "std", "model_checksum": model["checksum"],
                       "attack": "fgsm", "norm": "linf", "kind": "budget", "eps": 0.1,
                       "config": "{}", "dataset": "digits", "split": "test", "n": 2,
                       "seed": 0, "scale": "smoke", "status": "complete",
                       "finished_at": "2026-12-06", "threat": "white-box"})  # fmt: skip
    db["samples"].insert_all(
        [{"run_id": "r1", "idx": i, "position": i, "label": 1, "clean_pred": 1, "adv_pred": adv,
          "success": int(adv != 1), "l2": 0.0, "x_l2": 1.0, "eps": 0.1}
         for i, adv in enumerate((1, 2))], pk=("run_id", "position"))  # fmt: skip
    db.close()
    assert _no_torch(args, db_copy) == []


def test_starting_the_cli_imports_nothing_heavy():
    """`advbench -h` and every command's parsing start with typer and rich alone: pandas
    (half a second), numpy, sqlite-utils and torch load when a command needs them."""
    code = (
        "import sys, advbench.cli; print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'pandas', 'numpy', 'sqlite_utils', 'matplotlib', 'foolbox', 'art'}))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", res.stdout
