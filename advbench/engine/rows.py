"""One batch of instances and the sample rows it leaves: predictions, norms, passes and
the checklist's diagnostics, one row per instance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from advbench.attacks import Crafted
from advbench.criteria import adversarial
from advbench.diagnostics import stability
from advbench.metrics import perturbation_norms


def predict(model, x):
    return model(x).argmax(1)


@dataclass
class Batch:
    """One batch of instances and what the evaluated model says about them."""

    positions: list[int]
    idx: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None
    clean_pred: torch.Tensor
    start_idx: torch.Tensor | None = None  # test index of each instance's start image

    def hit(self, pred: torch.Tensor) -> torch.Tensor:
        """Attack success (criteria.adversarial): misclassified, or classified as the target."""
        return adversarial(pred, self.y, self.target)

    def subset(self, keep: list[int]) -> Batch:
        """The instances at indexes `keep` of this batch."""
        k = torch.tensor(keep, dtype=torch.long)
        pick = lambda t: None if t is None else t[k.to(t.device)]  # noqa: E731
        return Batch([self.positions[i] for i in keep], self.idx[k], pick(self.x),
                      pick(self.y), pick(self.target), pick(self.clean_pred),
                      pick(self.start_idx))  # fmt: skip


def sample_rows(run_id, eps, b: Batch, adv, adv_pred, crafted, cost, min_norm=None):
    failed = crafted.init_failed
    l0, l2, linf = perturbation_norms((adv - b.x).cpu())
    x_l2 = b.x.flatten(1).norm(dim=1).cpu()
    x_linf = b.x.flatten(1).abs().amax(dim=1).cpu()
    success = b.hit(adv_pred).cpu()
    fwd, bwd = cost
    rows = []
    for i in range(len(b.idx)):
        rows.append(
            {
                "run_id": run_id,
                "idx": int(b.idx[i]),
                "position": int(b.positions[i]),
                "label": int(b.y[i]),
                "target": None if b.target is None else int(b.target[i]),
                "clean_pred": int(b.clean_pred[i]),
                "adv_pred": int(adv_pred[i]),
                "success": int(success[i]),
                "l0": float(l0[i]),
                "l2": float(l2[i]),
                "linf": float(linf[i]),
                "x_l2": float(x_l2[i]),
                "x_linf": float(x_linf[i]),
                "eps": eps,
                "min_norm": None
                if min_norm is None or not torch.isfinite(min_norm[i])
                else float(min_norm[i]),
                "fwd": float(fwd[i]),
                "bwd": float(bwd[i]),
                "trace": None if crafted.trace is None else json.dumps(crafted.trace[i]),
                "start_idx": None
                if b.start_idx is None or b.start_idx[i] < 0
                else int(b.start_idx[i]),
                "init_failed": None if failed is None else int(failed[i]),
                "carried_from": None,
            }
        )
    return rows


def rows_of(crafted, keep: list[int]):
    """The rows `keep` of a batch's crafting result (an attack that took the whole batch
    with some instances marked done)."""
    return Crafted(
        crafted.adv[keep],
        trace=None if crafted.trace is None else [crafted.trace[i] for i in keep],
        queries=None if crafted.queries is None else crafted.queries[keep],
        init_failed=None if crafted.init_failed is None else crafted.init_failed[keep],
    )


def add_diagnostics(rows, advs, b: Batch, diag, model, source, seed: int, keep=None):
    """The batch's `diagnostics` columns (`diag`: the crafting's, per instance) on each of
    its runs' rows, which hold the instances `keep` of `b` (all by default: a shortcut
    chain attacks only some). Called after every run's result is judged: its predictions
    draw nothing the stored outcomes depend on. The noise check runs on the whole batch, so
    each instance gets the noise it gets in the plain plan."""
    flips, kinds = stability(model, b.x, b.clean_pred, seed)
    if keep is not None:
        b = b.subset(keep)
        flips, kinds = [flips[i] for i in keep], [kinds[i] for i in keep]
    for run_id, run_rows in rows.items():
        fooled = None
        if source is not None:  # did the example fool the model it was crafted on?
            fooled = b.hit(predict(source, advs[run_id])).cpu().tolist()
        for i, row in enumerate(run_rows):
            row.update(diag[i])
            row.update(noise_flips=flips[i], output_kind=kinds[i],
                       source_success=None if fooled is None else int(fooled[i]))  # fmt: skip


def outputs_not_logits(model, test, device) -> bool:
    """Whether the model's outputs on a few test inputs are probabilities or one-hot."""
    from advbench.diagnostics import output_kind

    x, _ = test.get(torch.arange(min(8, len(test))))
    with torch.no_grad():
        return any(k != "logits" for k in output_kind(model(x.to(device))))
