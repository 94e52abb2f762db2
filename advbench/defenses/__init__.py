"""Defense registry, three kinds:

- training-time: the factory maps resolved params to parts of `advbench.defenses.training`
  (transforms and regularisers); `a+b` composes the parts of each, in order, into one loss
  function for `fit`;
- architecture: `meta["spec"]` changes the model's ModelSpec (brelu), trained with the
  parts of whatever it is composed with (`gda+brelu`);
- inference-time: the factory maps params to `wrap(base) -> nn.Module`
  (`advbench.defenses.inference`); nothing is trained.

Each entry's metadata gives its kind, the fine-tuning defaults of the paper it follows, and
`weight`, the parameter that `--param <weight>=auto` chooses by fidel's protocol.
Parameters of a composition are namespaced: `--param jacobian.lambda=0.1`; a bare key
goes to every component that has it.

Over 500 lines: a table of registrations that reads as data (each defense's parameters,
papers' settings and recipes); the defenses' code is in their own modules (nsloss.py,
mad.py, jacobian.py, training.py, inference.py) and imports torch only when built.
"""

from __future__ import annotations

from typing import Any

from advbench.defenses.gradients import GRADIENTS
from advbench.errors import BadInput
from advbench.registry import Param, Registry

# Upper ends of the defenses' ranges, so a typo (lambda=1e30, sigma=1e40) is refused in one
# line instead of training a model whose loss is all regulariser or all noise. The papers'
# largest settings are far inside them: weights of 10 (fidel's CIFAR-10 NsLoss λ), L2 radii
# of 3 (fidel's CIFAR-10 NsEps), while the L2 diameter of a 224 x 224 RGB image in [0, 1]
# is 388.
MAX_WEIGHT = 1e4
MAX_L2 = 1e3

DEFENSES: Registry[Any] = Registry("defense")
ALIASES: dict[str, str] = {"combined": "nsloss+jacobian"}  # fidel's Combined
# Settings an alias carries beyond its components' (fidel Table I: Combined on CIFAR-10
# keeps the Jacobian weight at 0.01, where JacobReg alone uses 0.1).
ALIAS_FAMILY: dict[str, dict[str, dict[str, Any]]] = {
    "combined": {"cifar": {"jacobian.lambda": 0.01}}
}
KINDS = ("training-time", "architecture", "inference-time")
# GRADIENTS (defenses/gradients.py): those a white-box attack may follow through a
# non-differentiable inference-time step (feature-squeezing's rounding); the first is the
# default. See inference.FeatureSqueezing.


def _t():
    from advbench.defenses import training

    return training


def _jacobian(p):
    from advbench.defenses.jacobian import jacobian_regulariser

    def reg(model, x, logits, target):
        return jacobian_regulariser(
            model, x, logits, projections=p["projections"], exact=p["exact"], form=p["form"]
        )

    return [_t().Part("jacobian", regulariser=reg, weight=p["lambda"], clean_under_at=True)]


def _gradient_penalty(name: str, fn: str):
    """jakubovitz's baselines: `training.<fn>` weighted by λ, on the clean inputs when
    combined with adversarial training."""
    return lambda p: [
        _t().Part(name, regulariser=getattr(_t(), fn), weight=p["lambda"], clean_under_at=True)
    ]


# jakubovitz 003:189-191: λ 0.1 (MNIST) / 0.5 (CIFAR-10) on ‖J‖F of eq. 4 (exact), Adam with
# mini-batches of 500 on MNIST, RMSProp with 128 on CIFAR-10. The regulariser's weight per
# sample depends on the batch (eq. 4 divides the batch's Frobenius norm by B), so the batch
# is part of the recipe. Fine-tuning epochs and learning rate are not given: 10, 1e-4.
_JAKUBOVITZ_TRAIN = {"optimizer": "adam", "batch_size": 500, "lr": 1e-4, "epochs": 10}
_JAKUBOVITZ_CIFAR = {"optimizer": "rmsprop", "batch_size": 128}
_JAKUBOVITZ_JACOBIAN = {
    "params": {"lambda": 0.1, "form": "jakubovitz", "exact": True},
    "train": _JAKUBOVITZ_TRAIN,
    "family": {"cifar": {"params": {"lambda": 0.5}, "train": _JAKUBOVITZ_CIFAR}},
}
_JAKUBOVITZ_BASELINE = {
    "train": _JAKUBOVITZ_TRAIN,
    "family": {"cifar": {"train": _JAKUBOVITZ_CIFAR}},
}

DEFENSES.register(
    "jacobian",
    _jacobian,
    params=(
        Param("lambda", float, 0.01, "weight of the regulariser", high=MAX_WEIGHT),
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
    weight="lambda",
    family={"cifar": {"params": {"lambda": 0.1}, "train": {"epochs": 100}}},  # fidel Table I
    help="Jacobian regulariser on the input-logit Jacobian (post-training fine-tuning); "
    "--recipe jakubovitz for that paper's settings",
    # fidel §IV-B: Adam, lr 1e-4, continued from the pretrained model.
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 20},
    recipes={"jakubovitz": _JAKUBOVITZ_JACOBIAN},
)
DEFENSES.register(
    "input-gradient",
    _gradient_penalty("input-gradient", "input_gradient"),
    params=(Param("lambda", float, 1.0, "weight of mean ‖∇x CE‖²", high=MAX_WEIGHT),),
    kind="training-time",
    paper="jakubovitz",
    weight="lambda",
    help="Ross & Doshi-Velez: penalty on the squared norm of the cross-entropy's input gradient",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
    recipes={"jakubovitz": _JAKUBOVITZ_BASELINE},
)
DEFENSES.register(
    "cross-lipschitz",
    _gradient_penalty("cross-lipschitz", "cross_lipschitz"),
    params=(Param("lambda", float, 0.1, "weight of (1/C²) Σ_k,j ‖∇z_k − ∇z_j‖²", high=MAX_WEIGHT),),
    kind="training-time",
    paper="jakubovitz",
    weight="lambda",
    help="Hein & Andriushchenko: penalty on differences of the logits' input gradients",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
    recipes={"jakubovitz": _JAKUBOVITZ_BASELINE},
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
        Param("eps", float, 2.1, "L2 size of the virtual adversarial perturbation", high=MAX_L2),
        Param(
            "xi",
            float,
            1e-6,
            "finite-difference step of the power iteration",
            positive=True,
            high=1,
        ),
        Param("iterations", int, 1, "power iterations"),
        Param("alpha", float, 1.0, "weight of the KL term", high=MAX_WEIGHT),
    ),
    kind="training-time",
    paper="zantedeschi",
    weight="alpha",
    help="virtual adversarial training (Miyato et al.)",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "gda",
    lambda p: [_t().Part("gda", transform=_t().gda(copies=p["copies"], sigma=p["sigma"]))],
    params=(
        Param("copies", int, 10, "noisy copies per sample (0: plain fine-tuning)", high=1000),
        Param(
            "sigma",
            float,
            0.3,
            "noise standard deviation (zantedeschi: 0.3 MNIST, 0.05 CIFAR)",
            high=10,
        ),
    ),
    kind="training-time",
    paper="zantedeschi",
    family={"cifar": {"params": {"sigma": 0.05}}},
    help="Gaussian data augmentation",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "label-smoothing",
    lambda p: [
        _t().Part("label-smoothing", transform=_t().label_smoothing(true_weight=p["true_weight"]))
    ],
    params=(
        Param(
            "true_weight", float, 0.9, "target probability of the true label", high=1, positive=True
        ),
    ),
    kind="training-time",
    paper="zantedeschi",
    help="soft targets: the true label's weight, the rest spread over the others",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)
DEFENSES.register(
    "fgsm-at",
    lambda p: [
        _t().Part(
            "fgsm-at", transform=_t().fgsm_at(eps=p["eps"], ratio=p["ratio"]), adversarial=True
        )
    ],
    params=(
        Param("eps", float, 0.3, "FGSM budget (zantedeschi: 0.3 MNIST, 0.05 CIFAR)", high=1),
        Param(
            "ratio", float, 0.5, "weight α of the adversarial half (Goodfellow et al.: 0.5)", high=1
        ),
    ),
    kind="training-time",
    paper="zantedeschi, jakubovitz",
    family={"cifar": {"params": {"eps": 0.05}}},
    help="adversarial training with FGSM examples crafted on the current model",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
    recipes={"jakubovitz": _JAKUBOVITZ_BASELINE},
)
DEFENSES.register(
    "pgd-at",
    lambda p: [
        _t().Part(
            "pgd-at",
            transform=_t().pgd_at(
                eps=p["eps"], steps=p["steps"], step_size=p["step_size"], ratio=p["ratio"]
            ),
            adversarial=True,
        )
    ],
    params=(
        Param("eps", float, 0.3, "L∞ budget (Madry MNIST 0.3, CIFAR 8/255)", high=1),
        Param("steps", int, 40),
        Param("step_size", float, 0.01, "L∞ size of each step", positive=True, high=1),
        Param(
            "ratio", float, 1.0, "weight of the adversarial rows; 1 trains on them alone", high=1
        ),
    ),
    kind="training-time",
    paper="madnet, pesso",
    # Madry et al. CIFAR-10: ε 8/255, 7 steps of 2/255.
    family={"cifar": {"params": {"eps": 0.031, "steps": 7, "step_size": 0.0078}}},
    help="Madry PGD adversarial training (random start)",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)


DEFENSES.register(
    "nsloss",
    lambda p: [
        _t().Part(
            "nsloss",
            regulariser=_nsloss().nsloss(eps=p["eps"], samples=p["samples"]),
            weight=p["lambda"],
        )
    ],
    params=(
        Param(
            "lambda", float, 2.0, "weight λ₁ (fidel Table I: 2 MNIST, 10 CIFAR-10)", high=MAX_WEIGHT
        ),
        Param(
            "eps",
            float,
            1.0,
            "NsEps, L2 radius of the perturbations (1 MNIST, 3 CIFAR-10)",
            high=MAX_L2,
        ),
        Param("samples", int, 5, "N perturbations per sample (5 MNIST, 10 CIFAR-10)"),
    ),
    kind="training-time",
    paper="fidel",
    weight="lambda",
    family={
        "cifar": {"params": {"lambda": 10.0, "eps": 3.0, "samples": 10}, "train": {"epochs": 100}}
    },
    help="neural-sensitivity loss (fidel Alg. 1): activation and logit change under random "
    "L2 perturbations; `combined` = nsloss+jacobian",
    # fidel §IV-B / Table I: Adam, lr 1e-4, 20 epochs on MNIST (100 on CIFAR-10).
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 20},
)


def _nsloss():
    from advbench.defenses import nsloss

    return nsloss


def _mad(p):
    from advbench.defenses import mad

    t = _t()
    return [
        t.Part("mad-pairs", transform=mad.MadPairs(p["q"])),
        t.Part("label-smoothing", transform=t.label_smoothing(true_weight=p["alpha"])),
        t.Part("mad-siamese", regulariser=mad.mad_siamese, weight=p["siamese"], needs_batch=True),
        t.Part("mad-rvl", regulariser=mad.mad_rvl, weight=p["rvl"], needs_batch=True),
        t.Part(
            "mad-jacobian",
            regulariser=mad.mad_jacobian(p["projections"], p.get("exact", False)),
            weight=p["jacobian"],
            needs_batch=True,
        ),
    ]


DEFENSES.register(
    "mad",
    _mad,
    params=(
        Param(
            "q",
            float,
            0.5,
            "probability Q of a same-class Siamese partner (not given; 0.5)",
            high=1,
        ),
        Param(
            "alpha",
            float,
            0.8,
            "label smoothing: target probability of the true label",
            high=1,
            positive=True,
        ),
        Param("siamese", float, 1.0, "λ_Siam of (δ − cos(z1, z2))²", high=MAX_WEIGHT),
        Param("rvl", float, 1.0, "λ_RVL of the reduce-variance loss", high=MAX_WEIGHT),
        Param("jacobian", float, 0.01, "λ_Jacob of the embedding-Jacobian norm", high=MAX_WEIGHT),
        Param("projections", int, 1, "random projections for the embedding-Jacobian norm"),
        Param(
            "exact",
            bool,
            False,
            "exact embedding-Jacobian norm (a backward per dimension)",
            since="0.1-faithful-cells",
        ),
    ),
    kind="training-time",
    paper="madnet",
    help="MAD loss (madnet): Siamese partners, cosine target, reduce-variance loss, "
    "embedding-Jacobian norm, label smoothing; the loss is L_MAD / 2",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
    # madnet Appendix C (002:296-303): SGD lr 0.1, weight decay 0.002, batch 128; 80 epochs
    # on MNIST, 400 on CIFAR-10.
    scratch_defaults={
        "optimizer": "sgd",
        "lr": 0.1,
        "epochs": 80,
        "weight_decay": 0.002,
        "batch_size": 128,
    },
    scratch_family={"cifar": {"epochs": 400}},
)


def _brelu_spec(spec, p):
    from dataclasses import replace

    return replace(spec, activation="brelu", activation_param=p["t"])


DEFENSES.register(
    "brelu",
    lambda p: [],
    params=(Param("t", float, 1.0, "threshold t of min(max(0, x), t)", positive=True, high=1e3),),
    kind="architecture",
    paper="zantedeschi",
    spec=_brelu_spec,
    help="bounded ReLU: every activation of the parent's architecture becomes min(max(0,x),t); "
    "trained from the parent's weights, or from scratch with --from-scratch",
    defaults={"optimizer": "adam", "lr": 1e-4, "epochs": 10},
)


def _squeezing(p):
    from advbench.defenses.inference import FeatureSqueezing

    return lambda base: FeatureSqueezing(base, bits=p["bits"], median=p["median"])


def _pnml(p):
    from advbench.defenses.inference import PNML

    return lambda base: PNML(
        base,
        lam=p["lambda"],
        iterations=p["iterations"],
        top_k=p["top_k"],
        step=p.get("step", 0.0),  # wrappers stored before the parameter existed
    )


DEFENSES.register(
    "feature-squeezing",
    _squeezing,
    params=(
        Param("bits", int, 1, "colour depth kept (zantedeschi: 1 MNIST, 3 CIFAR-10)", high=16),
        Param("median", int, 0, "median-smoothing window (0: none)", high=15),
    ),
    kind="inference-time",
    paper="zantedeschi",
    family={"cifar": {"params": {"bits": 3}}},
    gradients=GRADIENTS,
    help="bit-depth reduction (and optional median smoothing) before the model; BPDA backward",
)
DEFENSES.register(
    "pnml",
    _pnml,
    params=(
        Param(
            "lambda", float, 0.1, "refinement strength (pesso: 0.1 MNIST, 0.03 CIFAR-10)", high=1
        ),
        Param("iterations", int, 1, "refinement steps inside the λ ball (Fig. 4 / Table 4)"),
        Param(
            "step",
            float,
            0.0,
            "size of each refinement step (0: λ / iterations)",
            since="0.1-faithful-cells",
            high=1,
        ),
        Param("top_k", int, 0, "hypotheses: the k most probable labels (0: all)", high=1000),
    ),
    kind="inference-time",
    paper="pesso",
    family={"cifar": {"params": {"lambda": 0.03}}, "imagenet": {"params": {"lambda": 3 / 255}}},
    help="adversarial pNML: per label a targeted FGSM refinement, then normalised p(label)",
)


def _hard_label(p):
    from advbench.defenses.inference import HardLabel

    return HardLabel


def _numpy_quantize(p):
    from advbench.defenses.inference import NumpyQuantize

    return lambda base: NumpyQuantize(base, levels=p["levels"])


# Broken on purpose: models whose evaluation must be flagged (`advbench report --checks`).
DEFENSES.register(
    "hard-label",
    _hard_label,
    kind="inference-time",
    paper="sanity",
    help="SANITY ONLY: one-hot scores of the prediction (zero gradients; gradient masking)",
)
DEFENSES.register(
    "numpy-quantize",
    _numpy_quantize,
    params=(Param("levels", int, 255, "quantization levels of the input", low=2, high=65536),),
    kind="inference-time",
    paper="sanity",
    help="SANITY ONLY: input quantized in numpy, outside autograd (no input gradient)",
)


def components(defense: str) -> list[str]:
    """`a+b` -> ["a", "b"] (aliases expanded), each a registered defense."""
    names = ALIASES.get(defense, defense).split("+")
    for name in names:
        DEFENSES.get(name)  # unknown name: BadInput listing the valid ones
    if len(set(names)) != len(names):
        raise BadInput(f"--defense {defense!r} names a component twice")
    wrappers = [n for n in names if _kind(n) == "inference-time"]
    if wrappers and len(names) > 1:
        raise BadInput(
            f"--defense {defense!r}: {wrappers[0]} is inference-time and is not trained with "
            f"the rest; harden with the others first, then apply {wrappers[0]} to that model"
        )
    if sum(_kind(n) == "architecture" for n in names) > 1:
        raise BadInput(f"--defense {defense!r} names more than one architecture change")
    return names


def _kind(name: str) -> str:
    return DEFENSES.get(name).meta["kind"]


def kind(defense: str) -> str:
    """inference-time, architecture (some component changes the model) or training-time."""
    kinds = {_kind(n) for n in components(defense)}
    return next(k for k in reversed(KINDS) if k in kinds)


AUTO = "auto"


def _per_component(defense: str, names: list[str], raw: dict[str, Any]) -> dict[str, dict]:
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
    return per


def recipes(defense: str) -> list[str]:
    """Paper recipes any component of `defense` has (besides its default settings)."""
    return sorted({r for n in components(defense) for r in DEFENSES.get(n).meta.get("recipes", {})})


def check_recipe(defense: str, recipe: str | None) -> None:
    if recipe is not None and recipe not in recipes(defense):
        raise BadInput(
            f"--recipe {recipe!r}: {defense} has "
            + (f"recipes: {', '.join(recipes(defense))}" if recipes(defense) else "no recipes")
        )


def _recipe(name: str, recipe: str | None, family: str | None, part: str) -> dict[str, Any]:
    """A component's recipe settings (`params` or `train`), with the family's over them."""
    r = DEFENSES.get(name).meta.get("recipes", {}).get(recipe) if recipe else None
    if r is None:
        return {}
    return {**r.get(part, {}), **r.get("family", {}).get(family, {}).get(part, {})}


def resolve(
    defense: str, raw: dict[str, Any], family: str | None = None, recipe: str | None = None
) -> dict[str, Any]:
    """Validated parameters: flat for one defense, {component: params} for a composition.

    `family` (mnist, cifar, imagenet) fills in the paper's setting for that kind of data
    where it differs from the MNIST defaults; `recipe` (e.g. `jakubovitz`) replaces the
    default paper's settings by another paper's; what the user passes wins.
    A regulariser's weight may be `auto` (fidel §III-C); it stays the string "auto" here
    and `advbench.defenses.auto` replaces it by the chosen value before training.
    """
    names = components(defense)
    per = _per_component(defense, names, raw) if len(names) > 1 else {names[0]: dict(raw)}
    check_recipe(defense, recipe)
    if family is not None or recipe is not None:
        for n in names:
            paper = DEFENSES.get(n).meta.get("family", {}).get(family, {}).get("params", {})
            # a recipe's settings replace the default paper's where it gives them
            per[n] = {**paper, **_recipe(n, recipe, family, "params"), **per[n]}
        for key, value in ALIAS_FAMILY.get(defense, {}).get(family, {}).items():
            comp, _, param = key.partition(".")
            if key not in raw and param not in raw:
                per[comp][param] = value
    out = {}
    for n, params in per.items():
        entry = DEFENSES.get(n)
        autos = [k for k, v in params.items() if str(v).strip().lower() == AUTO]
        for k in autos:
            if k != entry.meta.get("weight"):
                able = ", ".join(
                    f"{e.name}.{e.meta['weight']}" for e in DEFENSES if "weight" in e.meta
                )
                raise BadInput(
                    f"--param {k}=auto: {n} has no automatically chosen weight; "
                    f"only a regulariser's weight can be auto ({able})"
                )
        resolved = entry.resolve({k: v for k, v in params.items() if k not in autos})
        resolved.update({k: AUTO for k in autos})
        out[n] = resolved
    return out[names[0]] if len(names) == 1 else out


def identity(defense: str, resolved: dict[str, Any]) -> dict[str, Any]:
    """Resolved params as they identify a model: parameters added later are left out at
    their default (registry.Param.since), so models stored before them are still found."""
    per = {n: DEFENSES.get(n).identity(p) for n, p in per_component(defense, resolved).items()}
    return next(iter(per.values())) if len(per) == 1 else per


def gradient_choices(defense: str | None) -> tuple[str, ...]:
    """The gradients an attack may follow through a stored model's defense (the first is
    the default); () where autograd's gradient is the only one."""
    if not defense:
        return ()
    return tuple(c for n in components(defense) for c in DEFENSES.get(n).meta.get("gradients", ()))


def per_component(defense: str, resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Resolved params keyed by component, whether `defense` is one or a composition."""
    names = components(defense)
    return {names[0]: resolved} if len(names) == 1 else resolved


def auto_weights(defense: str, resolved: dict[str, Any]) -> list[tuple[str, str]]:
    """(component, parameter) pairs whose value is `auto`."""
    return [
        (n, k)
        for n, p in per_component(defense, resolved).items()
        for k, v in p.items()
        if v == AUTO
    ]


def loss_for(defense: str, resolved: dict[str, Any]):
    """The loss function for `fit`: the components' parts composed in order."""
    from advbench.defenses.training import compose

    per = per_component(defense, resolved)
    return compose([part for n, p in per.items() for part in DEFENSES.get(n).factory(p)])


def spec_for(defense: str, resolved: dict[str, Any], spec):
    """The hardened model's ModelSpec: the parent's, with any architecture change applied."""
    for n, p in per_component(defense, resolved).items():
        change = DEFENSES.get(n).meta.get("spec")
        if change is not None:
            spec = change(spec, p)
    return spec


def wrapper_for(defense: str, resolved: dict[str, Any]):
    """`wrap(base) -> nn.Module` of an inference-time defense."""
    (name,) = components(defense)
    return DEFENSES.get(name).factory(resolved)


def defaults_for(
    defense: str, from_scratch: bool = False, family: str | None = None, recipe: str | None = None
) -> dict[str, Any]:
    """Training defaults: the first component's paper setting for the data-set family (for
    training from scratch, its from-scratch recipe where the paper gives one; {} otherwise);
    with `recipe`, that paper's settings from the first component that has the recipe."""
    names = components(defense)
    meta = DEFENSES.get(names[0]).meta
    if recipe is not None:
        check_recipe(defense, recipe)
        first = next(n for n in names if recipe in DEFENSES.get(n).meta.get("recipes", {}))
        train = _recipe(first, recipe, family, "train")
    if from_scratch:
        out = {**meta.get("scratch_defaults", {}), **meta.get("scratch_family", {}).get(family, {})}
        if recipe is not None:  # "regular training" with another paper's optimiser and batch
            out.update({k: train[k] for k in ("optimizer", "batch_size") if k in train})
        return out
    if recipe is not None:
        return {**DEFENSES.get(first).meta.get("defaults", {}), **train}
    per_family = meta.get("family", {}).get(family, {}).get("train", {})
    return {**meta.get("defaults", {}), **per_family}


def family_settings(name: str) -> str:
    """`cifar: sigma=0.05` for `--list`: the paper settings used on other data sets."""

    def show(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    def items(values):
        return ", ".join(f"{k}={show(v)}" for k, v in values.items())

    out = []
    for fam, setting in DEFENSES.get(name).meta.get("family", {}).items():
        out.append(f"{fam}: " + items({**setting.get("params", {}), **setting.get("train", {})}))
    for recipe, r in DEFENSES.get(name).meta.get("recipes", {}).items():
        text = f"--recipe {recipe}: " + items({**r.get("params", {}), **r.get("train", {})})
        for fam, setting in r.get("family", {}).items():
            values = {**setting.get("params", {}), **setting.get("train", {})}
            text += f" (on {fam}: {items(values)})"
        out.append(text)
    return "; ".join(out)
