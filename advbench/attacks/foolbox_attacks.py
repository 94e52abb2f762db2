"""Adapters over foolbox 3: PyTorch tensors in [0, 1] in, adversarial tensors out.

foolbox is the back-end for these because it is as fast as a hand-written loop for PGD and
an order of magnitude faster than ART for C&W on our machines (see ENVIRONMENT.md).
"""

from __future__ import annotations

import foolbox as fb
import torch


def _fmodel(model):
    device = next(model.parameters()).device
    return fb.PyTorchModel(model.eval(), bounds=(0.0, 1.0), device=device)


def _budget(attack):
    def run(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        _, clipped, _ = attack(_fmodel(model), x, y, epsilons=eps)
        return clipped.detach()

    return run


def fgsm(*, norm: str = "linf"):
    return _budget(fb.attacks.FGSM() if norm == "linf" else fb.attacks.FGM())


def _rel(steps: int, rel_stepsize: float | None) -> float:
    return 2.5 / steps if rel_stepsize is None else rel_stepsize


def pgd_linf(*, steps: int, rel_stepsize: float | None, random_start: bool):
    return _budget(
        fb.attacks.LinfPGD(
            steps=steps, rel_stepsize=_rel(steps, rel_stepsize), random_start=random_start
        )
    )


def pgd_l2(*, steps: int, rel_stepsize: float | None, random_start: bool):
    return _budget(
        fb.attacks.L2PGD(
            steps=steps, rel_stepsize=_rel(steps, rel_stepsize), random_start=random_start
        )
    )


def bim(*, steps: int, rel_stepsize: float | None):
    # Kurakin et al.: no random start, steps of size ε/steps by default (madnet: 10 steps).
    rel = 1.0 / steps if rel_stepsize is None else rel_stepsize
    return _budget(fb.attacks.LinfBasicIterativeAttack(steps=steps, rel_stepsize=rel))


def _minimal(attack):
    def run(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raw, _, _ = attack(_fmodel(model), x, y, epsilons=None)
        return raw.detach()

    return run


def deepfool_l2(*, steps: int, candidates: int, overshoot: float):
    return _minimal(
        fb.attacks.L2DeepFoolAttack(steps=steps, candidates=candidates, overshoot=overshoot)
    )


def deepfool_linf(*, steps: int, candidates: int, overshoot: float):
    return _minimal(
        fb.attacks.LinfDeepFoolAttack(steps=steps, candidates=candidates, overshoot=overshoot)
    )


def rfgsm(*, alpha: float):
    """Random+FGSM (Tramèr et al. 2018), written here: foolbox and ART do not ship it.

    x' = x + α·sign(N(0, I)), then an FGSM step of ε − α from x'; with ε ≤ α it is the noise
    step alone (zantedeschi's Fig. 5 note).
    """
    fgsm_attack = fb.attacks.FGSM()

    def run(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        step = min(alpha, eps)
        start = (x + step * torch.randn_like(x).sign()).clamp(0, 1)
        if eps <= alpha:
            return start
        _, adv, _ = fgsm_attack(_fmodel(model), start, y, epsilons=eps - step)
        return ((adv - x).clamp(-eps, eps) + x).clamp(0, 1).detach()

    return run


def cw_l2(*, steps, binary_search_steps, stepsize, confidence, initial_const, abort_early):
    attack = fb.attacks.L2CarliniWagnerAttack(
        binary_search_steps=binary_search_steps,
        steps=steps,
        stepsize=stepsize,
        confidence=confidence,
        initial_const=initial_const,
        abort_early=abort_early,
    )

    return _minimal(attack)
