"""Adapters over the Adversarial Robustness Toolbox (ART).

`fgsm-min` uses ART's minimal FGSM because zantedeschi et al. (ART's authors) measured their
"minimal FGSM" with it: ε grows by `eps_step` until the label flips, up to `eps_max`.
JSMA, HopSkipJump and APGD come from ART because foolbox 3 ships none of them.
"""

from __future__ import annotations

import numpy as np
import torch

from advbench.attacks import Crafted


def art_classifier(model):
    """Wrap a zoo model for ART; inputs are cast to float32 (ART passes float64 arrays)."""
    from art.estimators.classification import PyTorchClassifier

    class _Float32(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.float())

    return PyTorchClassifier(
        model=_Float32(model).eval(),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(model.input_shape),
        nb_classes=model.classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if next(model.parameters()).is_cuda else "cpu",
    )


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _back(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32)).to(like.device)


def _labels(y, target):
    """ART's convention: y holds the true labels, or the targets when targeted."""
    return _np(y if target is None else target).astype(np.int64)


def fgsm_min(*, eps_step: float, eps_max: float):
    from art.attacks.evasion import FastGradientMethod

    def run(model, x: torch.Tensor, y: torch.Tensor, target=None) -> torch.Tensor:
        attack = FastGradientMethod(
            art_classifier(model),
            norm=np.inf,
            eps=eps_max,
            eps_step=eps_step,
            targeted=target is not None,
            minimal=True,
            batch_size=len(x),
        )
        return _back(attack.generate(_np(x), _labels(y, target)), x)

    return run


_NORMS = {"linf": np.inf, "l2": 2}


def apgd(*, norm: str, loss: str, steps: int, restarts: int, rel_stepsize: float):
    """AutoAttack's APGD (Croce & Hein 2020) with the CE or the DLR loss."""
    from art.attacks.evasion import AutoProjectedGradientDescent

    loss_type = {"ce": "cross_entropy", "dlr": "difference_logits_ratio"}[loss]

    def run(model, x, y, eps, target=None):
        attack = AutoProjectedGradientDescent(
            art_classifier(model),
            norm=_NORMS[norm],
            eps=eps,
            eps_step=rel_stepsize * eps,
            max_iter=steps,
            targeted=target is not None,
            nb_random_init=restarts,
            batch_size=len(x),
            loss_type=loss_type,
            verbose=False,
        )
        return _back(attack.generate(_np(x), _labels(y, target)), x)

    return run


def jsma(*, theta: float, gamma: float):
    """JSMA (Papernot et al. 2016). ART's JSMA is targeted; untargeted, ART draws a random
    target per sample (numpy's generator, seeded per batch by the engine)."""
    from art.attacks.evasion import SaliencyMapMethod

    def run(model, x, y, target=None):
        attack = SaliencyMapMethod(
            art_classifier(model), theta=theta, gamma=gamma, batch_size=len(x), verbose=False
        )
        onehot = None if target is None else np.eye(model.classes)[_np(target).astype(int)]
        return _back(attack.generate(_np(x), onehot), x)

    return run


def _noise_start(attack, x: np.ndarray, y_p: int, target, rng) -> np.ndarray | None:
    """ART's own search for a starting adversarial (HopSkipJump `_init_sample`: up to
    `init_size` uniform-noise images, the first that fools the model binary-searched toward x
    in L2 to 0.001), drawn from `rng` instead of ART's unseeded `np.random.RandomState()`,
    so a run and its resumption start from the same point. We reimplement the loop (a few
    lines) because ART exposes no seed for it; its binary search is ART's. None: no draw
    fooled the model."""
    predict = attack.estimator.predict
    for _ in range(attack.init_size):
        img = rng.uniform(0.0, 1.0, size=x.shape).astype(x.dtype)
        cls = int(np.argmax(predict(img[None], batch_size=1), axis=1)[0])
        if cls == target if target is not None else cls != y_p:
            return attack._binary_search(
                current_sample=img,
                original_sample=x,
                target=y_p if target is None else target,
                norm=2,
                clip_min=0.0,
                clip_max=1.0,
                threshold=0.001,
            )
    return None


def hsj(
    *, norm: str, max_iter: int, max_eval: int, init_eval: int, init_size: int,
    start: str = "target-image",
):  # fmt: skip
    """HopSkipJump (Chen et al. 2020), decision-based: it sees only predicted labels.

    Targeted, each sample starts from `start`, an image the crafting model classifies as the
    target (as HSJ's authors do; ART would otherwise draw uniform noise until one lands in
    the target class, which often fails); a NaN row means none exists. Without a start, the
    sample starts where ART's noise search would, drawn from numpy's generator (which the
    engine seeds per batch; ART's own draw is unseeded, so its runs were not reproducible).
    A sample no start was found for is left unchanged and flagged `init_failed`, so the
    engine does not count it as robust; with `start="noise"` (ART's behaviour, which
    fidel's tables used) it is left unchanged and not flagged: judged as it is. Samples are
    attacked one at a time so that the queries each one cost can be counted (the engine's
    counting wrapper sees every forward row)."""
    from art.attacks.evasion import HopSkipJump

    flag_failures = start == "target-image"  # `start` below is the per-sample start image

    def run(model, x, y, target=None, start=None):
        attack = HopSkipJump(
            art_classifier(model),
            targeted=target is not None,
            norm=_NORMS[norm],
            max_iter=max_iter,
            max_eval=max_eval,
            init_eval=init_eval,
            init_size=init_size,
            verbose=False,
        )
        seeds = np.random.randint(0, 2**31 - 1, size=len(x))  # one stream per sample
        with torch.no_grad():
            pred = model(x).argmax(1)
        done = pred != y if target is None else pred == target  # nothing to search for
        out, queries, failed = [], [], []
        for i in range(len(x)):
            before = getattr(model, "rows_forward", 0)
            xi = _np(x[i : i + 1])
            t = None if target is None else int(target[i])
            init = None if start is None else _np(start[i : i + 1])
            if not done[i] and (init is None or not np.isfinite(init).all()):
                found = _noise_start(
                    attack, xi[0], int(pred[i]), t, np.random.RandomState(seeds[i])
                )
                init = None if found is None else found[None]
            if done[i] or init is None:  # nothing to search for, or from
                out.append(xi)
                seen = 1  # our look at x (ART's generate looks at x itself)
            else:
                labels = None if t is None else np.eye(model.classes)[[t]]
                out.append(attack.generate(xi, labels, x_adv_init=init))
                seen = 0
            failed.append(not done[i] and init is None and flag_failures)
            queries.append(getattr(model, "rows_forward", 0) - before + seen)
        return Crafted(
            _back(np.concatenate(out), x),
            queries=torch.tensor(queries, dtype=torch.float),
            init_failed=torch.tensor(failed),
        )

    return run
