"""Attacks written here, because neither foolbox nor ART does what the papers did.

- the C&W variants (madnet's L∞ box, fidel's restarts and EOT) are in cw.py.
- `bpda_pgd` (pesso's adaptive attack; Athalye et al. 2018): PGD whose gradient flows
  through `model.bpda(x)`, where an inference-time defense replaces its non-differentiable
  step by the identity, while success is judged on the real forward pass.
- `noise`: uniform noise in the L∞ ball, Carlini et al. 2019's sanity row (an attack must
  beat it).
- `pgd_early_stop` (issue 14's shortcut, on by default in suites): foolbox's L∞/L2 PGD step
  for step, but each instance stops at its first adversarial iterate and a restart attacks
  only the instances still robust. foolbox runs every step on the whole batch and has no
  hook to drop rows, so the loop is written out; the random starts are drawn for the whole
  batch as foolbox draws them, so an instance's trajectory does not depend on which others
  are still open, and the result is never weaker than foolbox's (its final iterate), up to
  floating point: a forward over fewer rows may round differently (another convolution
  algorithm), so an iterate with a margin within rounding of 0 can be judged otherwise by
  the engine's whole-batch prediction. `benchmarks/suite_speed.py` counts such reversals.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from advbench.attacks import Crafted, best_of_restarts, restart_loss


def bpda_pgd(
    *,
    steps: int,
    rel_stepsize: float | None,
    abs_stepsize: float | None,
    restarts: int,
    random_start: bool,
    keep: str,
):
    """L∞ PGD on the cross-entropy; gradients through `model.bpda` when the model has one.
    With keep=max-loss, restarts are ranked by the loss on the real forward (pesso's
    adaptive attack ranks them by the pNML model's loss)."""
    rel = 2.5 / steps if rel_stepsize is None else rel_stepsize

    def run(model, x, y, eps, target=None):
        surrogate = getattr(model, "bpda", model)
        alpha = rel * eps if abs_stepsize is None else abs_stepsize

        def attempt():
            xa = x + (torch.empty_like(x).uniform_(-eps, eps) if random_start else 0)
            xa = xa.clamp(0, 1)
            for _ in range(steps):
                xa.requires_grad_(True)
                logits = surrogate(xa)
                loss = (
                    F.cross_entropy(logits, y)
                    if target is None
                    else -F.cross_entropy(logits, target)
                )
                (grad,) = torch.autograd.grad(loss, xa)
                with torch.no_grad():
                    xa = xa + alpha * grad.sign()
                    xa = (x + (xa - x).clamp(-eps, eps)).clamp(0, 1)
            with torch.no_grad():
                pred = model(xa).argmax(1)
            return xa, (pred != y) if target is None else (pred == target)

        return best_of_restarts(
            restarts, attempt, keep, lambda adv: restart_loss(model, adv, y, target)
        )

    return run


def noise():
    def run(model, x, y, eps, target=None, done=None):
        return (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)

    run.takes_done = True  # drawn for the whole batch; the engine keeps the open rows
    return run


def _pgd_start(x: torch.Tensor, eps: float, norm: str, start: str = "ball") -> torch.Tensor:
    """foolbox 3's random start, drawn for the whole batch in the same order: uniform in
    the L∞ box, or the first n coordinates of a point on the sphere in n + 2 dimensions
    (Voelker et al.: uniform in the n-ball) for L2; clipped to [0, 1]. start="data" (L2):
    advertorch's, a uniform image pulled onto the ball (`foolbox_attacks.AdvertorchL2PGD`)."""
    if norm == "linf":
        out = x + (torch.rand(x.shape, device=x.device, dtype=x.dtype) * (2 * eps) - eps)
    elif start == "data":
        out = x + _clip_l2(torch.rand(x.shape, device=x.device, dtype=x.dtype) - x, eps)
    else:
        n = x[0].numel()
        g = torch.randn(len(x), n + 2, device=x.device, dtype=x.dtype)
        ball = (g / g.norm(dim=1, keepdim=True))[:, :n]
        out = x + eps * ball.reshape(x.shape)
    return out.clamp(0.0, 1.0)


def _clip_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Each row scaled onto the L2 ball of radius eps if it lies outside (foolbox's
    clip_lp_norms, advertorch's clamp_by_pnorm)."""
    shape = (-1,) + (1,) * (delta.dim() - 1)
    factor = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    return delta * factor.view(shape)


def _pgd_step(x, x0, grad, eps: float, step: float, sign: float, norm: str, start="ball"):
    """One foolbox PGD update: normalised gradient step, projection onto the ε-ball, [0, 1]
    (start="data", L2: advertorch's order, [0, 1] first, then the ball)."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    if norm == "linf":
        x = x + sign * step * grad.sign()
        return (x0 + (x - x0).clamp(-eps, eps)).clamp(0.0, 1.0)
    g = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
    x = x + sign * step * g
    if start == "data":
        return x0 + _clip_l2(x.clamp(0.0, 1.0) - x0, eps)
    return (x0 + _clip_l2(x - x0, eps)).clamp(0.0, 1.0)


def _descend(model, x0, start, cls, rows, *, eps, step, steps, norm, untargeted, init="ball"):
    """PGD from `start` on the batch rows `rows`; each row stops at its first adversarial
    iterate. Returns (adversarial or final iterate, fooled) for those rows."""
    restrict = getattr(model, "restrict", None)  # engine.Counted: diagnostics per row
    sign = 1.0 if untargeted else -1.0
    x = start.clone()
    fooled = torch.zeros(len(x0), dtype=torch.bool, device=x0.device)
    for t in range(steps + 1):
        live = (~fooled).nonzero().squeeze(1)
        if not len(live):
            break
        last = t == steps
        if restrict is not None:
            restrict(rows[live])
        xa = x[live].detach().requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            logits = model(xa)
        pred = logits.argmax(1)
        hit = pred != cls[live] if untargeted else pred == cls[live]
        fooled[live] = hit
        if last:
            break
        # every open row's gradient is taken (a row that has just become adversarial keeps
        # its iterate; its gradient still reaches the diagnostics, as foolbox's would)
        loss = F.cross_entropy(logits, cls[live], reduction="sum")
        (grad,) = torch.autograd.grad(loss, xa)
        go = ~hit
        if go.any():
            moved = live[go]
            x[moved] = _pgd_step(x[moved], x0[moved], grad[go], eps, step, sign, norm, init)
    if restrict is not None:
        restrict(None)
    return x.detach(), fooled


def pgd_early_stop(*, norm: str, steps: int, rel_stepsize: float, abs_stepsize, random_start,
                   restarts: int, start: str = "ball"):  # fmt: skip
    """foolbox's PGD (`norm` linf or l2) with each instance stopped at its first adversarial
    iterate and restarts only for the instances still robust (keep=first-success)."""

    def run(model, x, y, eps: float, target=None, done=None):
        """`done` (bool per row): instances already decided (an ε-shortcut carried them);
        they are never attacked, but their random starts are still drawn, so every other
        instance starts where it starts in the plain plan."""
        step = abs_stepsize if abs_stepsize is not None else rel_stepsize * eps
        cls = y if target is None else target
        best = x.clone()
        if done is None:
            done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        done = done.to(x.device).clone()
        trace = []
        for _ in range(restarts):
            # drawn for the whole batch every restart, as foolbox does, then cut to the rows
            begin = _pgd_start(x, eps, norm, start) if random_start else x
            open_ = (~done).nonzero().squeeze(1)
            if len(open_):
                adv, ok = _descend(model, x[open_], begin[open_], cls[open_], open_, eps=eps,
                                   step=step, steps=steps, norm=norm,
                                   untargeted=target is None, init=start)  # fmt: skip
                best[open_] = adv
                done[open_] |= ok
            trace.append(done.clone().int())
        if restarts == 1:
            return best
        return Crafted(best, trace=torch.stack(trace, 1).tolist())

    run.takes_done = True
    return run


def deepfool_early_stop(*, norm: str, steps: int, candidates: int, overshoot: float):
    """foolbox 3's DeepFool (`L2DeepFoolAttack` / `LinfDeepFoolAttack`, loss "logits") step
    for step, with two savings that change no result (issue 14):
    - each instance leaves the loop at its first adversarial iterate; foolbox keeps such a
      row's iterate too, but forwards and differentiates the whole batch until every row is
      adversarial or the steps run out;
    - the candidates' gradients come from one forward pass (`retain_graph`), where foolbox
      forwards once per candidate (an eagerpy limitation its code comment names).
    The candidate classes are the initial logits' top `candidates`, as foolbox takes them."""

    def run(model, x, y, target=None, batch_rows=None):
        """`batch_rows`: the engine batch's row of each of x's (a caller attacking a subset,
        `superdeepfool`), so the diagnostics are credited to the right instances."""
        restrict = getattr(model, "restrict", None)
        if restrict is not None and batch_rows is not None:
            restrict(batch_rows)
        with torch.no_grad():
            logits = model(x)
        k_max = min(candidates, logits.shape[-1])
        classes = logits.argsort(dim=-1, descending=True)[:, :k_max]
        shape = (-1,) + (1,) * (x.dim() - 1)
        x0, xs = x, x.clone()
        p_total = torch.zeros_like(x)
        open_ = torch.arange(len(x), device=x.device)
        for _ in range(steps):
            if restrict is not None:
                restrict(open_ if batch_rows is None else batch_rows[open_])
            xa = xs[open_].detach().requires_grad_(True)
            out = model(xa)
            adv = out.argmax(1) != y[open_]
            rows = torch.arange(len(open_), device=x.device)
            keep = ~adv
            if not keep.any():
                break
            l0 = out[rows, classes[open_, 0]]
            losses, grads = [], []
            for k in range(1, k_max):
                loss = out[rows, classes[open_, k]] - l0
                (g,) = torch.autograd.grad(loss.sum(), xa, retain_graph=k < k_max - 1)
                losses.append(loss.detach())
                grads.append(g)
            open_ = open_[keep]
            losses_t = torch.stack(losses, 1)[keep]
            grads_t = torch.stack(grads, 1)[keep]
            flat = grads_t.flatten(2)
            if norm == "l2":
                dist = losses_t.abs() / (flat.norm(dim=-1) + 1e-8)
            else:
                dist = losses_t.abs() / (flat.abs().sum(-1) + 1e-8)
            best = dist.argmin(1)
            pick = torch.arange(len(best), device=x.device)
            d, g = dist[pick, best] + 1e-4, grads_t[pick, best]
            if norm == "l2":
                step = (d / (g.flatten(1).norm(dim=1) + 1e-8)).view(shape) * g
            else:
                step = d.view(shape) * g.sign()
            p_total[open_] += step
            xs[open_] = (x0[open_] + (1.0 + overshoot) * p_total[open_]).clamp(0.0, 1.0)
        if restrict is not None:
            restrict(None)
        return xs.detach()

    return run


def deepfool_start(model, x, y, norm: str, steps: int = 50):
    """An adversarial start per row from DeepFool (advbench's early-stopping copy of
    foolbox's, 10 candidates, overshoot 0.02); rows it does not break stay x. FMN's and
    carlini-eval's C&W's start."""
    return deepfool_early_stop(norm=norm, steps=steps, candidates=10, overshoot=0.02)(
        model, x, y
    )


def superdeepfool(*, steps: int, df_steps: int, overshoot: float, search_steps: int):
    """SuperDeepFool L2 (Abdollahpourrostam, Abroshan & Moosavi-Dezfooli, "Revisiting
    DeepFool: generalization and improvement", arXiv 2303.12481; SDF(∞, 1)), written here:
    foolbox and ART have no SuperDeepFool, and adv-lib's (`adv_lib.attacks.sdf`, which
    `benchmarks/cross_check.py` compares with) is not a dependency (see fmn.py) and keeps only
    its projected points. Why carlini-eval has it: DeepFool as published stops at its first
    adversarial iterate along a first-order direction, 0.88 / 0.84 of the best norm known on
    the demo's models (issue 30); its authors' generalisation keeps DeepFool's cost per step
    and adds the one step it lacks, a projection onto the boundary's normal.

    Per instance, from x_0 = x: x̃ = DeepFool(x_i) (early-stopping DeepFool, 10 candidates,
    `overshoot`), a point just past the boundary; w = ∇(z_k − z_y) at x̃, k the class x̃ is
    classified as (the runner-up where DeepFool ran out of steps); x_{i+1} = x_0 +
    ((x̃ − x_0)·ŵ) ŵ, the point of x̃'s tangent plane nearest x_0, clipped to [0, 1]. An
    instance stops once x_{i+1} is adversarial (the paper's rule) or after `steps`. Kept
    per instance: the smallest adversarial among every x̃ and x_i met, so the result is
    never further than DeepFool's from x (its first x̃ is the `deepfool-l2` row's result at
    the same 10 candidates, overshoot and steps); then `search_steps`
    bisections of the segment from x to it (adv-lib's final line search). Untargeted only,
    as DeepFool."""
    df = deepfool_early_stop(norm="l2", steps=df_steps, candidates=10, overshoot=overshoot)

    def run(model, x, y, target=None):
        restrict = getattr(model, "restrict", None)

        def credit(rows):
            if restrict is not None:
                restrict(rows)

        shape = (-1,) + (1,) * (x.dim() - 1)
        best = x.clone()
        best_norm = torch.full((len(x),), float("inf"), device=x.device, dtype=x.dtype)

        def keep(rows, points, adversarial):
            norms = (points - x[rows]).flatten(1).norm(dim=1)
            better = adversarial & (norms < best_norm[rows])
            best[rows[better]] = points[better]
            best_norm[rows[better]] = norms[better]

        xi = x.clone()
        open_ = torch.arange(len(x), device=x.device)
        for _ in range(steps):
            if not len(open_):
                break
            xt = df(model, xi[open_], y[open_], batch_rows=open_).detach()
            credit(open_)
            xa = xt.requires_grad_(True)
            out = model(xa)
            pick = torch.arange(len(open_), device=x.device)
            rival = out.detach().clone()
            rival[pick, y[open_]] = -float("inf")
            k = rival.argmax(1)
            (w,) = torch.autograd.grad((out[pick, k] - out[pick, y[open_]]).sum(), xa)
            xt = xt.detach()
            keep(open_, xt, out.detach().argmax(1) != y[open_])
            w = w / w.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
            scale = ((xt - x[open_]).flatten(1) * w.flatten(1)).sum(1)
            xp = (x[open_] + scale.view(shape) * w).clamp(0.0, 1.0)
            with torch.no_grad():
                hit = model(xp).argmax(1) != y[open_]
            keep(open_, xp, hit)
            # a row whose projection did not move (a zero gradient) would repeat the same
            # DeepFool search every round: it stops with what it has
            moved = (xp != xi[open_]).flatten(1).any(1)
            xi[open_] = xp
            open_ = open_[~hit & moved]
        credit(None)
        found = torch.isfinite(best_norm)
        low = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        high = torch.ones(len(x), device=x.device, dtype=x.dtype)
        with torch.no_grad():
            for _ in range(search_steps if found.any() else 0):
                mid = (low + high) / 2
                point = x + mid.view(shape) * (best - x)
                hit = model(point).argmax(1) != y
                high = torch.where(hit, mid, high)
                low = torch.where(hit, low, mid)
        # where no bisection point was adversarial, best itself (x + 1·(best − x) can round
        # across a boundary a projection without overshoot sits on)
        point = torch.where((high == 1).view(shape), best, x + high.view(shape) * (best - x))
        return torch.where(found.view(shape), point, x).detach()

    return run
