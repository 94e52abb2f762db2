"""pesso (004): Table 1 and the refinement ablation (Table 4, captioned Figure 4).

Reading of the layout: Table 1's first column names the data set and ε only on a group's
first row; each row here carries it ("MNIST ε = 0.3 Ours"). Rows of other methods (Qin et
al., Carmon et al., Wong et al.) are published figures kept as references. "Best attack" is
the per-sample worst case over the row's stored FGSM, PGD, Adaptive and HSJA runs at that ε
(`report.worst_case`, as AutoAttack reports it), counted over the instances all of them
attacked. "-" in the paper (an attack it did not run) is a blank published value; the
measured cell is still filled where the suite ran it. ImageNet ε = 8/255 and 4/255 are the
suite's budgets 0.0314 and 0.0157.
"""

from __future__ import annotations

from advbench.report.papers import Cell, Role, TableSpec
from advbench.report.papers.madnet import _pgd_at

ARCH = {"mnist": "madry-mnist", "cifar10": "wrn-28-10", "imagenet": "resnet50"}
GROUPS = {"MNIST ε = 0.3": ("mnist", 0.3), "CIFAR10 ε = 0.031": ("cifar10", 0.031),
          "ImageNet ε = 8/255": ("imagenet", 0.0314),
          "ImageNet ε = 4/255": ("imagenet", 0.0157)}  # fmt: skip
METHODS = {"Standard": "standard", "Madry et al.": "madry", "Ours": "ours"}
ATTACKS = ("FGSM", "PGD", "Adaptive", "HSJA")
# Table 4: refinement iterations and step (CIFAR-10, λ = 0.03 in total).
REFINEMENT = {"1 iteration, step 0.03": "ours", "2 iterations, step 0.015": "ours-it2",
              "4 iterations, step 0.01": "ours-it4"}  # fmt: skip


def _roles(data: str) -> dict[tuple[str, str], Role]:
    arch = ARCH[data]
    roles = [
        Role("standard", arch),
        Role(
            "madry",
            arch,
            "pgd-at",
            parent="standard",
            harden=("--defense", "pgd-at"),
            scaled=_pgd_at(data, key=""),
        ),
        Role(
            "ours",
            arch,
            "pnml",
            parent="madry",
            params={"iterations": 1},
            harden=("--defense", "pnml"),
        ),
    ]
    if data == "cifar10":
        for it, step in ((2, 0.015), (4, 0.01)):
            roles.append(Role(f"ours-it{it}", arch, "pnml", parent="madry",
                              params={"iterations": it, "step": step},
                              harden=("--defense", "pnml", "--param", f"iterations={it}",
                                      "--param", f"step={step}")))  # fmt: skip
    return {(data, r.key): r for r in roles}


ROLES = {**_roles("mnist"), **_roles("cifar10"), **_roles("imagenet")}


def _table_1(row: str, col: str) -> Cell:
    group = next(g for g in GROUPS if row.startswith(g))
    data, eps = GROUPS[group]
    role = METHODS[row[len(group) + 1 :]]
    if col == "Natural":
        return Cell("clean", role, data)
    if col == "Best attack":
        return Cell("best", role, data, {"suite": "pesso", "labels": ATTACKS, "eps": eps})
    return Cell("accuracy", role, data, {"suite": "pesso", "label": col, "eps": eps})


TABLES = [
    TableSpec("pesso:1", "Accuracy (%) under each attack and the per-sample best attack",
              "pesso", ROLES, _table_1),
    TableSpec("pesso:4", "CIFAR-10: accuracy (%) under PGD (ε = 0.031) for refinement "
              "iterations and step sizes", "pesso", ROLES,
              lambda row, col: Cell("accuracy", REFINEMENT[row], "cifar10",
                                    {"suite": "pesso", "label": "PGD", "eps": 0.031})),
]  # fmt: skip
