"""fidel (000): Tables I, III–VI.

Reading of the layout: the first column of Tables III–VI names a group (Untargeted /
Targeted) only on its first row; each row here carries its group ("Targeted CW-L2").
Columns are "MODEL εk". The budgets ε1, ε5 (MNIST) and ε3, ε10 (CIFAR-10) are read as the
values 1, 5, 3 and 10 of the paper's budget list (the text calls them a small and a large
budget); that mapping is `EPS` below and nowhere else. Table I's header ("Hyperparameters
λ_i ϵ N epoch | Add. Info ACC") is read as λ, NsEps, N, epochs and clean accuracy. Tables V
and VI (transfer) take the examples crafted on the standard model (source root), so their
Standard column is the standard model attacked with its own examples, as in the paper.
"""

from __future__ import annotations

from advbench.report.papers import Cell, Role, TableSpec

EPS = {"ε1": 1.0, "ε5": 5.0, "ε3": 3.0, "ε10": 10.0}
ARCH = {"mnist": "keras-mnist", "cifar10": "vgg19"}
MODELS = {
    "Standard": "standard",
    "JacobReg": "jacobreg",
    "NsLoss": "nsloss",
    "Combined": "combined",
}


def _roles(fam: str) -> dict[tuple[str, str], Role]:
    arch = ARCH[fam]
    plain = {"recipe": None, "from_scratch": None}
    return {
        (fam, "standard"): Role("standard", arch),
        (fam, "jacobreg"): Role("jacobreg", arch, "jacobian", parent="standard", config=plain,
                                harden=("--defense", "jacobian")),
        (fam, "nsloss"): Role("nsloss", arch, "nsloss", parent="standard", config=plain,
                              harden=("--defense", "nsloss")),
        (fam, "combined"): Role("combined", arch, "nsloss+jacobian", aliases=("combined",),
                                parent="standard", config=plain,
                                harden=("--defense", "combined")),
    }  # fmt: skip


ROLES = {**_roles("mnist"), **_roles("cifar10")}


def _attack_cell(fam: str, transfer: bool):
    def cell(row: str, col: str) -> Cell:
        group, _, attack = row.partition(" ")
        model, _, eps = col.partition(" ")
        label = ("Transfer " if transfer else "") + attack
        if group == "Targeted":
            label += " (targeted)"
        match = {"suite": "fidel", "label": label, "eps": EPS[eps]}
        if attack.startswith("CW-L2"):  # high confidence is C&W's κ = 5 (Table II)
            match["params"] = {"confidence": 5.0 if attack == "CW-L2-HC" else 0.0}
        if group == "Targeted":
            match["targeted"] = "all-others"
        return Cell("accuracy", MODELS[model], fam, match)

    return cell


def _table_i(row: str, col: str) -> Cell:
    fam = "mnist" if row.startswith("MNIST") else "cifar10"
    model = MODELS[row.split(" ", 1)[1]]
    if col == "ACC":
        return Cell("clean", model, fam)
    keys = {
        "λ": {
            "nsloss": "lambda",
            "jacobreg": "lambda",
            "combined": "nsloss.lambda,jacobian.lambda",
        },
        "NsEps": {"nsloss": "eps", "combined": "nsloss.eps"},
        "N": {"nsloss": "samples", "combined": "nsloss.samples"},
    }
    if col == "epochs":
        return Cell("setting", model, fam, key="epochs")
    return Cell("setting", model, fam, key=keys[col].get(model))


TABLES = [
    TableSpec("fidel:I", "Model hyperparameters and clean accuracy (%)", "fidel", ROLES,
              _table_i, "A setting the defense does not have (JacobReg's NsEps, N) is N/A."),
    TableSpec("fidel:III", "MNIST: adversarial test accuracy (%)", "fidel", ROLES,
              _attack_cell("mnist", False)),
    TableSpec("fidel:IV", "CIFAR-10: adversarial test accuracy (%)", "fidel", ROLES,
              _attack_cell("cifar10", False)),
    TableSpec("fidel:V", "MNIST: adversarial test accuracy (%), transfer from the standard model",
              "fidel", ROLES, _attack_cell("mnist", True)),
    TableSpec("fidel:VI",
              "CIFAR-10: adversarial test accuracy (%), transfer from the standard model",
              "fidel", ROLES, _attack_cell("cifar10", True)),
]  # fmt: skip
