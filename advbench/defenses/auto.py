"""`--param lambda=auto`: fidel's protocol (§III-C) for a regulariser's weight.

1. Measure the regulariser R on 10 random training batches of the model being hardened
   (the standard model) and average: R0.
2. λ0 = log2(classes) / R0.
3. Search values larger and smaller than λ0 within its order of magnitude (here the span
   [λ0/√10, λ0·√10], bisected in log scale): train one epoch from the standard model with
   CE + λ·R and keep λ if the training cross-entropy stays below that of a random guess;
   the largest kept λ wins.

Interrupting the search loses at most one batch: each trial trains with the resumable
loop, and finished trials are noted beside the partial state, so a re-run skips them.

Two readings are ours and recorded with the result: the training cross-entropy a trial
reaches is measured after its epoch, on 10 random training batches with the trained
network (a fine-tuned model starts with a low loss, so the epoch's mean would hide a
collapse at its end), and the random guess's cross-entropy is ln(classes), in the nats our
loss is measured in (the paper writes log2).
Each component of a composition (`combined` = nsloss+jacobian) is searched on its own,
CE + λ_i·R_i, as the paper chooses each λ_i.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from advbench.errors import BadInput

SPAN = math.sqrt(10.0)  # λ0/SPAN .. λ0·SPAN: one order of magnitude around λ0
BISECTIONS = 2
R0_BATCHES = 10


def _loss(component: str, params: dict[str, Any], weight: str, value: float):
    from advbench.defenses import DEFENSES
    from advbench.defenses.training import compose

    return compose(DEFENSES.get(component).factory({**params, weight: value}))


def _batches(data, batch_size: int, count: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(count):
        idx = torch.randint(0, len(data), (min(batch_size, len(data)),), generator=g)
        yield data.get(idx)


def measure(model, data, loss, batch_size, seed, device, key: str) -> float:
    """Mean of loss term(s) `key` over `R0_BATCHES` random training batches ("reg": every
    term but the cross-entropy)."""
    model = copy.deepcopy(model).to(device)
    model.train(key == "reg")  # the regulariser as training sees it; the CE of the network
    torch.manual_seed(seed)
    total = 0.0
    for x, y in _batches(data, batch_size, R0_BATCHES, seed):
        terms = loss(model, x.to(device), y.to(device))
        if key == "reg":
            total += sum(float(v.detach()) for k, v in terms.items() if k not in ("ce", "_logits"))
        else:
            total += float(terms[key].detach())
    return total / R0_BATCHES


def search_weight(
    model,
    data,
    *,
    component: str,
    params: dict[str, Any],
    weight: str,
    classes: int,
    fit_cfg,
    progress=None,
    resume=None,
) -> tuple[float, dict[str, Any]]:
    """The chosen weight and the record of how it was chosen (stored on the model)."""
    import json

    from advbench.fit import FitConfig, cross_entropy_terms, fit

    bs, seed, device = fit_cfg.batch_size, fit_cfg.seed, fit_cfg.device
    r0 = measure(model, data, _loss(component, params, weight, 1.0), bs, seed, device, "reg")
    if not r0 > 0 or not math.isfinite(r0):
        raise BadInput(
            f"{component}.{weight}=auto: the regulariser is {r0} on the model, so "
            "log2(classes)/R0 is undefined; give the weight explicitly"
        )
    lam0 = math.log2(classes) / r0
    threshold = math.log(classes)
    trials: list[dict[str, float | bool]] = []
    progress = progress or _NoProgress()
    task = progress.add_task(f"{component}.{weight}=auto", total=2 + BISECTIONS, metrics="")

    notes = resume.notes() if resume is not None else None
    done = json.loads(notes.read_text()) if notes is not None and notes.exists() else {}

    def trial(lam: float) -> bool:
        tag = f"{component}.{weight}={lam!r}"
        if tag not in done:
            loss = _loss(component, params, weight, lam)
            if hasattr(loss, "bind"):
                loss.bind(data, classes)
            one = FitConfig(1, bs, fit_cfg.optimizer, fit_cfg.lr, 0.0, seed, device)
            trained = copy.deepcopy(model)
            state = resume.derived(tag) if resume is not None else None
            fit(trained, data, one, loss_fn=loss, resume=state)
            ce_end = measure(trained, data, cross_entropy_terms, bs, seed + 1, device, "ce")
            done[tag] = ce_end
            if notes is not None:
                notes.parent.mkdir(parents=True, exist_ok=True)
                notes.write_text(json.dumps(done))
                state.clear()
        ce_end = done[tag]
        ok = math.isfinite(ce_end) and ce_end < threshold
        trials.append({"lambda": lam, "ce_end": ce_end, "ok": ok})
        progress.update(task, advance=1, metrics=f"λ {lam:.4g}: CE {ce_end:.3f}")
        return ok

    if trial(lam0):
        lo, hi = lam0, lam0 * SPAN
        if trial(hi):
            lo = hi
    else:
        lo, hi = lam0 / SPAN, lam0
        if not trial(lo):
            hi = lo
    if lo != hi:
        for _ in range(BISECTIONS):
            mid = math.sqrt(lo * hi)
            if trial(mid):
                lo = mid
            else:
                hi = mid
    kept = [t for t in trials if t["ok"]]
    chosen = max(t["lambda"] for t in kept) if kept else min(t["lambda"] for t in trials)
    record = {
        "component": component,
        "param": weight,
        "r0": r0,
        "r0_batches": R0_BATCHES,
        "lambda0": lam0,
        "threshold_ce": threshold,
        "span": [lam0 / SPAN, lam0 * SPAN],
        "trials": trials,
        "chosen": chosen,
        "within_threshold": bool(kept),
    }
    return chosen, record


class _NoProgress:
    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass


def choose_weights(
    model,
    data,
    defense: str,
    resolved: dict[str, Any],
    *,
    classes: int,
    fit_cfg,
    progress=None,
    resume=None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`resolved` with every `auto` weight replaced by its chosen value, and the records."""
    from advbench.defenses import auto_weights, components, per_component

    per = copy.deepcopy(per_component(defense, resolved))
    records = []
    for comp, key in auto_weights(defense, resolved):
        value, record = search_weight(
            model,
            data,
            component=comp,
            params=per[comp],
            weight=key,
            classes=classes,
            fit_cfg=fit_cfg,
            progress=progress,
            resume=resume,
        )
        per[comp][key] = value
        records.append(record)
    names = components(defense)
    return (per[names[0]] if len(names) == 1 else per), records
