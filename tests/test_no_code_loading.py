"""Static guard: nothing under advbench/ loads a file in a way that can execute code.

Checkpoints are safetensors + JSON; the only unpickling is CIFAR's python batches through an
allow-list unpickler (advbench/data/external.py, `_ArrayOnlyUnpickler`). The test parses
every module and fails on: `torch.load` without `weights_only=True`; `pickle.load(s)`,
`pickle.Unpickler` or `import pickle` outside the allow-listed module; `np.load` with
`allow_pickle=True`; `joblib.load`, `dill`, `marshal.load(s)`, `shelve`, `eval`, `exec`.
"""

import ast
from pathlib import Path

import pytest

import advbench

PACKAGE = Path(advbench.__file__).parent
UNPICKLER = PACKAGE / "data" / "external.py"  # the allow-listed unpickler lives here
BANNED_MODULES = {"pickle", "cPickle", "dill", "joblib", "marshal", "shelve", "cloudpickle"}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def offences(source: str, path: Path) -> list[str]:
    tree = ast.parse(source)
    found = []
    allowed = path.resolve() == UNPICKLER.resolve()
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            mod = node.module if isinstance(node, ast.ImportFrom) else None
            for name in [*names, *([mod] if mod else [])]:
                top = name.split(".")[0]
                if top in BANNED_MODULES and not (allowed and top == "pickle"):
                    found.append(f"{where} imports {name}")
        if not isinstance(node, ast.Call):
            continue
        fn = _dotted(node.func)
        if fn.endswith("torch.load"):
            flag = _kw(node, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                found.append(f"{where} calls torch.load without weights_only=True")
        if fn in ("np.load", "numpy.load"):
            flag = _kw(node, "allow_pickle")
            if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                found.append(f"{where} calls {fn} with allow_pickle")
        if fn in ("eval", "exec"):
            found.append(f"{where} calls {fn}")
        if fn.split(".")[0] in BANNED_MODULES and not (allowed and fn == "pickle.UnpicklingError"):
            found.append(f"{where} calls {fn}")
    return found


def test_no_module_can_execute_code_while_loading_a_file():
    found = [o for p in sorted(PACKAGE.rglob("*.py")) for o in offences(p.read_text(), p)]
    assert found == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import torch\ntorch.load('m.pt')",
        "import torch\ntorch.load('m.pt', weights_only=False)",
        "import pickle\npickle.load(open('f', 'rb'))",
        "from pickle import loads",
        "import numpy as np\nnp.load('a.npy', allow_pickle=True)",
        "import joblib\njoblib.load('m')",
        "eval('1')",
    ],
)
def test_the_guard_sees_each_kind_of_offence(snippet):
    assert offences(snippet, PACKAGE / "models" / "checkpoint.py")


def test_the_guard_allows_safe_loading():
    safe = "import torch\ntorch.load('m.pt', weights_only=True)\nimport numpy as np\nnp.load('a')"
    assert offences(safe, PACKAGE / "models" / "checkpoint.py") == []
