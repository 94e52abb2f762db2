"""Defense registry. A training-time defense's factory maps its resolved params to the
parts of `advbench.defenses.training` (transforms and regularisers); `a+b` composes the
parts of each, in order, into one loss function for `fit`.

Each entry's metadata gives its kind and the fine-tuning defaults of the paper it follows.
Parameters of a composition are namespaced: `--param jacobian.lambda=0.1`; a bare key
goes to every component that has it.
"""

from __future__ import annotations

from typing import Any

from advbench.errors import BadInput
from advbench.registry import Param, Registry

DEFENSES: Registry[Any] = Registry("defense")
ALIASES: dict[str, str] = {}  # "combined": "nsloss+jacobian" once nsloss exists


def _t():
    from advbench.defenses import training

    return training


def _jacobian(p):
    from advbench.defenses.jacobian import jacobian_regulariser

    def reg(model, x, logits, target):
        return jacobian_regulariser(
            model, x, logits, projections=p["projections"], exact=p["exact"], form=p["form"]
        )

    return [_t().Part("jacobian", regulariser=reg, weight=p["lambda"])]


DEFENSES.register(
    "jacobian",
    _jacobian,
    params=(
        Param("lambda", float, 0.01, "weight of the regulariser"),
        Param("projections", int, 1, "random projections per step (Hoffman et al.)"),
        Param("exact", bool, False, "exact Jacobian (one backward pass per class)"),
        Param(
            "form",
            str,
            "hoffman",
            "hoffman: λ·½·mean‖J‖²_F; jakubovitz: λ·‖J_batch‖_F / B (eq. 4, always exact)",
            choices=("hoffman", "jakubovitz"),
        ),
    ),
    kind="training-time",
    paper="fidel, jakubovitz",
    help="Jacobian regulariser on the input-logit Jacobian (post-training fine-tuning)",
    # fidel §IV-B: Adam, lr 1e-4, continued from the pretrained model.
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 20},
)
DEFENSES.register(
    "input-gradient",
    lambda p: [_t().Part("input-gradient", regulariser=_t().input_gradient, weight=p["lambda"])],
    params=(Param("lambda", float, 1.0, "weight of mean ‖∇x CE‖²"),),
    kind="training-time",
    paper="jakubovitz",
    help="Ross & Doshi-Velez: penalty on the squared norm of the cross-entropy's input gradient",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "cross-lipschitz",
    lambda p: [_t().Part("cross-lipschitz", regulariser=_t().cross_lipschitz, weight=p["lambda"])],
    params=(Param("lambda", float, 0.1, "weight of (1/C²) Σ_k,j ‖∇z_k − ∇z_j‖²"),),
    kind="training-time",
    paper="jakubovitz",
    help="Hein & Andriushchenko: penalty on differences of the logits' input gradients",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "vat",
    lambda p: [
        _t().Part(
            "vat",
            regulariser=_t().vat(eps=p["eps"], xi=p["xi"], iterations=p["iterations"]),
            weight=p["alpha"],
        )
    ],
    params=(
        Param("eps", float, 2.1, "L2 size of the virtual adversarial perturbation"),
        Param("xi", float, 1e-6, "finite-difference step of the power iteration"),
        Param("iterations", int, 1, "power iterations"),
        Param("alpha", float, 1.0, "weight of the KL term"),
    ),
    kind="training-time",
    paper="zantedeschi",
    help="virtual adversarial training (Miyato et al.)",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "gda",
    lambda p: [_t().Part("gda", transform=_t().gda(copies=p["copies"], sigma=p["sigma"]))],
    params=(
        Param("copies", int, 10, "noisy copies per sample"),
        Param("sigma", float, 0.3, "noise standard deviation (zantedeschi: 0.3 MNIST, 0.05 CIFAR)"),
    ),
    kind="training-time",
    paper="zantedeschi",
    help="Gaussian data augmentation",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "label-smoothing",
    lambda p: [
        _t().Part("label-smoothing", transform=_t().label_smoothing(true_weight=p["true_weight"]))
    ],
    params=(Param("true_weight", float, 0.9, "target probability of the true label"),),
    kind="training-time",
    paper="zantedeschi",
    help="soft targets: the true label's weight, the rest spread over the others",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "fgsm-at",
    lambda p: [_t().Part("fgsm-at", transform=_t().fgsm_at(eps=p["eps"], ratio=p["ratio"]))],
    params=(
        Param("eps", float, 0.3, "FGSM budget (zantedeschi: 0.3 MNIST, 0.05 CIFAR)"),
        Param("ratio", float, 0.5, "weight α of the adversarial half (Goodfellow et al.: 0.5)"),
    ),
    kind="training-time",
    paper="zantedeschi, jakubovitz",
    help="adversarial training with FGSM examples crafted on the current model",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "pgd-at",
    lambda p: [
        _t().Part(
            "pgd-at",
            transform=_t().pgd_at(
                eps=p["eps"], steps=p["steps"], step_size=p["step_size"], ratio=p["ratio"]
            ),
        )
    ],
    params=(
        Param("eps", float, 0.3, "L∞ budget (Madry MNIST 0.3, CIFAR 8/255)"),
        Param("steps", int, 40),
        Param("step_size", float, 0.01),
        Param("ratio", float, 1.0, "weight of the adversarial rows; 1 trains on them alone"),
    ),
    kind="training-time",
    paper="madnet, pesso",
    help="Madry PGD adversarial training (random start)",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)


def components(defense: str) -> list[str]:
    """`a+b` -> ["a", "b"] (aliases expanded), each a registered defense."""
    names = ALIASES.get(defense, defense).split("+")
    for name in names:
        DEFENSES.get(name)  # unknown name: BadInput listing the valid ones
    if len(set(names)) != len(names):
        raise BadInput(f"--defense {defense!r} names a component twice")
    return names


def resolve(defense: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Validated parameters: flat for one defense, {component: params} for a composition."""
    names = components(defense)
    if len(names) == 1:
        return DEFENSES.get(names[0]).resolve(raw)
    per: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in raw.items():
        comp, dot, param = key.rpartition(".")
        if dot:
            if comp not in per:
                raise BadInput(f"--param {key}: {comp!r} is not one of {', '.join(names)}")
            per[comp][param] = value
            continue
        takers = [n for n in names if key in DEFENSES.get(n).defaults()]
        if not takers:
            raise BadInput(f"{defense} has no parameter {key!r} in any of {', '.join(names)}")
        for n in takers:
            per[n][key] = value
    return {n: DEFENSES.get(n).resolve(per[n]) for n in names}


def loss_for(defense: str, resolved: dict[str, Any]):
    """The loss function for `fit`: the components' parts composed in order."""
    from advbench.defenses.training import compose

    names = components(defense)
    per = {names[0]: resolved} if len(names) == 1 else resolved
    return compose([part for n in names for part in DEFENSES.get(n).factory(per[n])])


def defaults_for(defense: str) -> dict[str, Any]:
    """Fine-tuning defaults: the first component's paper setting."""
    return DEFENSES.get(components(defense)[0]).meta.get("defaults", {})
