"""Cross-check: every white-box attack of carlini-eval against an implementation advbench
does not call (issue 30), on the same instances, judged the same way.

For each row (FGSM, PGD-Linf, PGD-L2, APGD-CE, APGD-DLR, CW-L2, DeepFool-L2,
SuperDeepFool-L2, FMN-L2, FMN-Linf) at the suite's parameters for the scale, advbench's
attack (the registry entry the suite uses) and an independent one with matched parameters
attack the same n test instances (the suite's seeded choice) of one model. Both are judged
by the model's own prediction of the returned example and its real distance from the input
(a budget example outside its ε-ball or [0, 1] counts as not adversarial). Printed per row and ε:
robust accuracy of each, the paired difference advbench − other with its exact McNemar
95 % interval and p, per-instance agreement, and for minimal attacks the median norm ratio
advbench / other over the instances both broke; and forward passes per instance of each.

Independent implementations:
- torchattacks 3.5.1 (Kim): FGSM, PGD, PGDL2, DeepFool;
- AutoAttack's own package (pyautoattack, Croce & Hein): APGD (CE, DLR);
- adv-lib 0.2.8 (Rony et al.; the FMN authors' reference): carlini_wagner_l2, fmn, sdf.
Neither torchattacks nor adv-lib is a dependency: `pip install --no-deps torchattacks==3.5.1
adv-lib==0.2.8` (their declared pins, requests~=2.25 and visdom, would downgrade or fail to
build; neither is used here). adv-lib imports visdom for a logger it does not need unless
a callback is passed, so an empty module stands in for it.

    python benchmarks/cross_check.py [--dataset digits] [--db DB --model NAME] [--n 100]
        [--scale cpu] [--seed 0] [--only LABEL ...] [--output benchmarks/cross_check.md]

Without --model it trains madry-mnist on the data set (4 epochs, seed 0) in a scratch store.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

from advbench import api
from advbench.attacks import ATTACKS, unpack
from advbench.data import load
from advbench.engine.instances import select_samples
from advbench.env import describe
from advbench.paired import fmt_p, mcnemar
from advbench.store import open_db
from advbench.suites import load_suite, suite_jobs
from advbench.train import train_model

ROWS = ("FGSM", "PGD-Linf", "PGD-L2", "APGD-CE", "APGD-DLR", "CW-L2", "DeepFool-L2",
        "SuperDeepFool-L2", "FMN-L2", "FMN-Linf")  # fmt: skip


class Counted(torch.nn.Module):
    """The model, counting forward passes per instance (rows forwarded / n)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.rows = model, 0

    def __getattr__(self, name):  # input_shape, num_classes...: the model's own
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)

    def forward(self, x):
        self.rows += len(x)
        return self.model(x)


def other(label: str, params: dict, model, x, y, eps: float | None):
    """The independent implementation of a carlini-eval row, parameters matched."""
    import torchattacks

    steps = params.get("steps")
    if label == "FGSM":
        return torchattacks.FGSM(model, eps=eps)(x, y)
    if label in ("PGD-Linf", "PGD-L2"):
        cls = torchattacks.PGD if label == "PGD-Linf" else torchattacks.PGDL2
        alpha = (params.get("rel_stepsize") or 2.5 / steps) * eps
        best, done = x.clone(), torch.zeros(len(x), dtype=torch.bool)
        for _ in range(params.get("restarts", 1)):  # first success kept, as advbench keeps
            adv = cls(model, eps=eps, alpha=alpha, steps=steps, random_start=True)(x, y)
            with torch.no_grad():
                ok = model(adv).argmax(1) != y
            best[~done] = adv[~done]
            done |= ok
        return best
    if label.startswith("APGD"):
        from pyautoattack.autopgd_base import APGDAttack

        attack = APGDAttack(lambda v: model(v), n_iter=steps, norm="Linf", eps=eps, seed=0,
                            loss=params.get("loss", "ce"), n_restarts=params.get("restarts", 1),
                            device="cpu")  # fmt: skip
        return attack.perturb(x, y)
    if label == "DeepFool-L2":
        return torchattacks.DeepFool(model, steps=steps, overshoot=params.get("overshoot", 0.02))(
            x, y
        )
    sys.modules.setdefault("visdom", types.ModuleType("visdom"))  # see the module docstring
    if label == "CW-L2":
        from adv_lib.attacks.carlini_wagner import carlini_wagner_l2

        return carlini_wagner_l2(model, x, y, confidence=params.get("confidence", 0.0),
                                 learning_rate=params["stepsize"],
                                 initial_const=params["initial_const"],
                                 binary_search_steps=params["binary_search_steps"],
                                 max_iterations=steps, abort_early=True)  # fmt: skip
    if label == "SuperDeepFool-L2":
        from adv_lib.attacks.superdeepfool import sdf

        return sdf(model, x, y, steps=steps, df_steps=params["df_steps"],
                   overshoot=params["overshoot"], search_iter=params["search_steps"])  # fmt: skip
    if label.startswith("FMN"):
        from adv_lib.attacks.fast_minimum_norm import fmn

        norm = 2 if label == "FMN-L2" else math.inf
        return fmn(model, x, y, norm=norm, steps=steps, α_init=params.get("max_stepsize", 1.0),
                   γ_init=params.get("gamma", 0.05))  # fmt: skip
    raise ValueError(label)


def judge(model, x, y, adv, norm: str, eps: float | None):
    """Per instance: robust (bool) and the distance (inf where not adversarial)."""
    with torch.no_grad():
        fooled = model(adv).argmax(1) != y
    p = 2 if norm == "l2" else math.inf
    d = (adv - x).flatten(1).norm(p=p, dim=1)
    inside = (adv >= 0).flatten(1).all(1) & (adv <= 1).flatten(1).all(1)
    if eps is not None:
        inside &= d <= eps * (1 + 1e-5) + 1e-7
    ok = fooled & inside
    return ~ok, torch.where(ok, d, torch.full_like(d, math.inf))


def tie_misses(model, x, y, ours, theirs, norm: str) -> str:
    """'k of m': of the m instances advbench broke (at any distance) and the other did not,
    the k where the other's example has the true-class logit within 1e-4 of the best other
    class: a tie the model's prediction resolves either way with the batch's layout."""
    _, da = judge(model, x, y, ours, norm, None)
    _, db_ = judge(model, x, y, theirs, norm, None)
    miss = torch.isfinite(da) & ~torch.isfinite(db_)
    with torch.no_grad():
        out = model(theirs)
    true = out.gather(1, y[:, None]).squeeze(1)
    rival = out.scatter(1, y[:, None], -math.inf).amax(1)
    tie = (true - rival).abs() < 1e-4
    return f"{int((miss & tie).sum())} of {int(miss.sum())}"


def scratch_model(dataset: str) -> tuple[Path, str]:
    folder = Path(tempfile.mkdtemp(prefix="advbench-cross-check-"))
    store = open_db(folder / "a.db")
    row = train_model(store, name="cross", dataset=dataset, arch="madry-mnist", epochs=4,
                      batch_size=64, optimizer="adam", lr=1e-3, weight_decay=0.0, seed=0,
                      device="cpu")  # fmt: skip
    store.close()
    return folder / "a.db", row.name


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--db")
    ap.add_argument("--model")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--scale", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", action="append")
    ap.add_argument("--output")
    args = ap.parse_args(argv)
    db, name = (Path(args.db), args.model) if args.model else scratch_model(args.dataset)
    model = api.load(name, db=db).eval()
    counted = Counted(model)
    test = load(args.dataset, "test")
    idx = select_samples(test.labels, args.n, args.seed)
    x, y = test._fetch(idx).float(), test.labels[idx]
    jobs, _ = suite_jobs(load_suite("carlini-eval"), args.dataset, args.scale)
    rows = [j for j in jobs if j.label in ROWS and (not args.only or j.label in args.only)]
    lines = [f"# Cross-check: carlini-eval ({args.scale}) against independent implementations",
             "", f"Model {name} ({args.dataset}), n = {len(x)} test instances (seed "
             f"{args.seed}), {describe('cpu')}. Command: `python benchmarks/cross_check.py "
             f"{' '.join(argv or sys.argv[1:])}`", "",
             "| row | ε | advbench % | other % | advbench − other [95 %] (p) | agree | "
             "norm ratio (median) | passes/inst. advbench · other | other's misses at a tie | "
             "other |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for job in rows:
        entry = ATTACKS.get(job.attack)
        params = {**entry.defaults(), **job.params}  # make_job resolved them
        norm = {**entry.defaults(), **params}.get("norm") or entry.meta["norm"]
        factory = entry.factory(params)
        minimal = entry.meta["kind"] == "minimal"
        budgets = [None] if minimal else job.eps
        t0 = time.time()
        for eps in budgets:
            torch.manual_seed(args.seed)
            counted.rows = 0
            ours = unpack(factory(counted, x, y) if minimal else factory(counted, x, y, eps)).adv
            ours_passes = counted.rows / len(x)
            torch.manual_seed(args.seed)
            counted.rows = 0
            theirs = other(job.label, params, counted, x, y, eps).detach()
            their_passes = counted.rows / len(x)
            ties = tie_misses(model, x, y, ours, theirs, norm) if minimal else ""
            for e in (job.eps if minimal else [eps]):
                ra, da = judge(model, x, y, ours, norm, e)
                rb, db_ = judge(model, x, y, theirs, norm, e)
                t = mcnemar(ra.tolist(), rb.tolist())
                agree = (ra == rb).float().mean().item()
                both = torch.isfinite(da) & torch.isfinite(db_) & (da > 0) & (db_ > 0)  # not x
                ratio = (da[both] / db_[both].clamp_min(1e-12)).median().item() if minimal \
                    and both.any() else math.nan  # fmt: skip
                lines.append(
                    f"| {job.label} | {e:g} | {ra.float().mean() * 100:.1f} | "
                    f"{rb.float().mean() * 100:.1f} | {t.effect:+.1f} [{t.low:+.1f}, "
                    f"{t.high:+.1f}] (p {fmt_p(t.p)}) | {agree:.1%} | "
                    f"{'' if math.isnan(ratio) else f'{ratio:.3f}'} | "
                    f"{ours_passes:.0f} · {their_passes:.0f} | {ties} | {OTHER[job.label]} |"
                )
                print(lines[-1], file=sys.stderr, flush=True)  # a long run shows its rows
        print(f"{job.label}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    lines += ["", "advbench − other > 0: advbench leaves more instances robust (weaker). "
              "norm ratio: advbench's distance / the other's, on instances both broke "
              "(clean errors left out; < 1: advbench's are smaller). passes: forward passes "
              "per instance. misses at a "
              "tie (minimal rows): of the instances advbench broke and the other did not, "
              "those where the other's example sits on the decision boundary (true-class "
              "logit within 1e-4 of the best other), adversarial or not depending on the "
              "batch it is forwarded in."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    print(text)
    return text


OTHER = {
    "FGSM": "torchattacks FGSM",
    "PGD-Linf": "torchattacks PGD",
    "PGD-L2": "torchattacks PGDL2",
    "APGD-CE": "AutoAttack APGD (ce)",
    "APGD-DLR": "AutoAttack APGD (dlr)",
    "CW-L2": "adv-lib carlini_wagner_l2",
    "DeepFool-L2": "torchattacks DeepFool",
    "SuperDeepFool-L2": "adv-lib sdf",
    "FMN-L2": "adv-lib fmn (from x)",
    "FMN-Linf": "adv-lib fmn (from x)",
}

if __name__ == "__main__":
    main()
