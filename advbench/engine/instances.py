"""The instances a run attacks: a seeded choice of test samples (the same on every model),
only the correctly classified ones where a paper asks, and targets for targeted attacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from advbench.engine.rows import predict
from advbench.errors import BadInput
from advbench.fit import batch_seed
from advbench.jobs import AttackJob


def select_samples(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The first n of a seeded permutation of the split: the same samples on every model."""
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return perm[:n]


@dataclass
class Instances:
    """What one run attacks: a test-set index and (targeted) a target label per instance."""

    idx: torch.Tensor
    target: torch.Tensor | None
    n_samples: int

    def __len__(self) -> int:
        return len(self.idx)


def _select_correct(model, test, n: int, seed: int, device) -> torch.Tensor:
    """madnet's protocol: the first n of the seeded permutation the model classifies right."""
    perm = select_samples(test.labels, len(test), seed)  # the whole seeded permutation
    keep = []
    for i in range(0, len(perm), 500):
        chunk = perm[i : i + 500]
        x, y = test.get(chunk)
        keep.append(chunk[predict(model, x.to(device)).cpu() == y])
        if sum(len(k) for k in keep) >= n:
            break
    chosen = torch.cat(keep)
    if len(chosen) < n:
        raise BadInput(
            f"--only-correct: the model classifies only {len(chosen)} test samples correctly, "
            f"fewer than --n {n}"
        )
    return chosen[:n]


def target_starts(model, test, inst: Instances, seed: int, device) -> torch.Tensor:
    """Per targeted instance, the test index of a start image the crafting model classifies
    as the target (HopSkipJump's targeted start, as its authors do), drawn with a seeded
    generator among all such images other than the instance itself; -1 where none exists."""
    preds = torch.cat(
        [
            predict(model, test.get(torch.arange(i, min(i + 500, len(test))))[0].to(device)).cpu()
            for i in range(0, len(test), 500)
        ]
    )
    g = torch.Generator().manual_seed(batch_seed(seed, 11))
    out = torch.full((len(inst),), -1, dtype=torch.long)
    for i, (idx, t) in enumerate(zip(inst.idx.tolist(), inst.target.tolist(), strict=True)):
        pool = torch.nonzero(preds == t).flatten()
        pool = pool[pool != idx]
        if len(pool):
            out[i] = pool[torch.randint(len(pool), (1,), generator=g)]
    return out


def make_instances(model, test, job: AttackJob, n: int, seed: int, classes: int, device):
    idx = (
        _select_correct(model, test, n, seed, device)
        if job.only_correct
        else select_samples(test.labels, n, seed)
    )
    if job.targeted is None:
        return Instances(idx, None, n)
    y = test.labels[idx]
    if job.targeted == "all-others":  # fidel: each sample once per other label
        shifts = torch.arange(1, classes)
        return Instances(
            idx.repeat_interleave(classes - 1),
            ((y[:, None] + shifts[None, :]) % classes).flatten(),
            n,
        )
    g = torch.Generator().manual_seed(batch_seed(seed, 7))
    return Instances(idx, (y + torch.randint(1, classes, (n,), generator=g)) % classes, n)
