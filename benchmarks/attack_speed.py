"""Attack speed: advbench against foolbox, ART and a plain PyTorch loop, in one run.

Same model, same samples, same iteration counts. Prints time ratios, robust accuracies and
median perturbation norms, and writes them to results/attack_speed.json. Targets (issue 3):
advbench PGD within 1.1x of the plain loop; C&W no slower than foolbox with no larger median
L2; a 10-budget accuracy curve from one minimal-perturbation run costing about one run.

    python benchmarks/attack_speed.py [--n 256] [--cw-n 32] [--db results/advbench.db]

It uses the model `demo-standard` when the database has it (run `advbench demo` first),
otherwise it trains a madry-mnist on mnist-5k for 3 epochs into a temporary database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from advbench import data
from advbench.catalogue import load_model, model_row
from advbench.engine import run_jobs, select_samples
from advbench.env import describe, record_environment
from advbench.jobs import make_job
from advbench.store import open_db
from advbench.train import train_model

EPS_LINF, PGD_STEPS = 0.1, 40  # at 0.3 a standard MNIST net is at 0 % for every method
CW = {
    "steps": 100,
    "binary_search_steps": 5,
    "stepsize": 0.05,
    "initial_const": 1.0,
    "confidence": 0.0,
    "abort_early": True,
}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def plain_pgd(model, x, y, eps, steps):
    """The baseline: random start, `steps` signed-gradient steps of 2.5·ε/steps, projection."""
    alpha = 2.5 * eps / steps
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(adv), y)
        (g,) = torch.autograd.grad(loss, adv)
        adv = (adv.detach() + alpha * g.sign()).clamp(x - eps, x + eps).clamp(0, 1)
    return adv


def robust(model, adv, y):
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).float().mean())


def median_l2(model, x, adv, y):
    """Median L2 over samples classified correctly before and wrongly after the attack."""
    with torch.no_grad():
        ok = (model(adv).argmax(1) != y) & (model(x).argmax(1) == y)
    norms = (adv - x).flatten(1).norm(dim=1)[ok]
    return statistics.median(norms.tolist()) if len(norms) else float("nan"), int(ok.sum())


def get_model(db_path: Path | None):
    if db_path is not None and db_path.exists():
        db = open_db(db_path)
        if db["models"].count_where("name = 'demo-standard'"):
            return db, "demo-standard"
    db = open_db(Path(tempfile.mkdtemp()) / "bench.db")
    train_model(
        db,
        name="bench",
        dataset="mnist-5k",
        arch="madry-mnist",
        epochs=3,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        seed=0,
        device="cpu",
    )
    return db, "bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--cw-n", type=int, default=32)
    ap.add_argument("--art-cw-n", type=int, default=4, help="ART C&W is slow: fewer images")
    ap.add_argument("--db", type=Path, default=Path("results/advbench.db"))
    ap.add_argument("--out", type=Path, default=Path("results/attack_speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    src_db, name = get_model(args.db)
    model, _, _ = load_model(src_db, name)
    row = model_row(src_db, name)
    test = data.load(row["dataset"], "test")
    idx = select_samples(test.labels, args.n, 0)
    x, y = test.get(idx)  # also warms the data cache, as a long-running session would be
    # advbench writes to its own scratch database so the timing includes its bookkeeping.
    scratch = open_db(Path(tempfile.mkdtemp()) / "scratch.db")
    scratch["models"].insert(row)
    env = record_environment(scratch, "cpu")
    res: dict[str, dict] = {}

    # --- PGD L-inf, 40 steps ---
    torch.manual_seed(0)
    adv, t = timed(lambda: plain_pgd(model, x, y, EPS_LINF, PGD_STEPS))
    res["pgd_plain"] = {"s": t, "robust": robust(model, adv, y)}

    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    fpgd = fb.attacks.LinfPGD(steps=PGD_STEPS, rel_stepsize=2.5 / PGD_STEPS)
    (_, adv, _), t = timed(lambda: fpgd(fmodel, x, y, epsilons=EPS_LINF))
    res["pgd_foolbox"] = {"s": t, "robust": robust(model, adv, y)}

    from art.attacks.evasion import ProjectedGradientDescent

    from advbench.attacks.art_attacks import art_classifier

    apgd = ProjectedGradientDescent(
        art_classifier(model),
        eps=EPS_LINF,
        eps_step=2.5 * EPS_LINF / PGD_STEPS,
        max_iter=PGD_STEPS,
        num_random_init=1,
        batch_size=args.n,
        verbose=False,
    )
    adv_np, t = timed(lambda: apgd.generate(x.numpy(), y.numpy()))
    res["pgd_art"] = {"s": t, "robust": robust(model, torch.from_numpy(adv_np).float(), y)}

    job = make_job("pgd-linf", [EPS_LINF], {"steps": PGD_STEPS})
    summ, t = timed(
        lambda: run_jobs(
            scratch, model, row, [job], n=args.n, seed=0, batch_size=args.n, env_id=env
        )
    )
    res["pgd_advbench"] = {"s": t, "robust": summ[0].accuracy}

    # --- C&W L2 ---
    xc, yc = x[: args.cw_n], y[: args.cw_n]
    fcw = fb.attacks.L2CarliniWagnerAttack(**{k: v for k, v in CW.items()})
    (raw, _, _), t = timed(lambda: fcw(fmodel, xc, yc, epsilons=None))
    med, k = median_l2(model, xc, raw, yc)
    res["cw_foolbox"] = {"s": t, "median_l2": med, "n_found": k, "s_per_image": t / len(xc)}

    cw_job = make_job("cw-l2", [1.5], CW)
    summ, t = timed(
        lambda: run_jobs(
            scratch, model, row, [cw_job], n=args.cw_n, seed=0, batch_size=args.cw_n, env_id=env
        )
    )
    norms = [
        r["min_norm"]
        for r in scratch["samples"].rows_where(
            "run_id = ? and min_norm is not null and clean_pred = label", [summ[0].id]
        )
    ]
    res["cw_advbench"] = {
        "s": t,
        "median_l2": statistics.median(norms) if norms else None,
        "n_found": len(norms),
        "s_per_image": t / args.cw_n,
    }

    from art.attacks.evasion import CarliniL2Method

    acw = CarliniL2Method(
        art_classifier(model),
        learning_rate=CW["stepsize"],
        binary_search_steps=CW["binary_search_steps"],
        max_iter=CW["steps"],
        initial_const=CW["initial_const"],
        batch_size=args.art_cw_n,
        verbose=False,
    )
    xa, ya = x[: args.art_cw_n], y[: args.art_cw_n]
    adv_np, t = timed(lambda: acw.generate(xa.numpy(), ya.numpy()))
    med, k = median_l2(model, xa, torch.from_numpy(adv_np).float(), ya)
    res["cw_art"] = {"s": t, "s_per_image": t / args.art_cw_n, "median_l2": med, "n_found": k}

    # --- 10-budget curve from one minimal run vs one budget ---
    curve_job = make_job("cw-l2", list(np.linspace(0.25, 2.5, 10)), {**CW, "steps": 99})
    _, t10 = timed(
        lambda: run_jobs(
            scratch, model, row, [curve_job], n=args.cw_n, seed=0, batch_size=args.cw_n, env_id=env
        )
    )
    res["cw_curve_10_budgets"] = {"s": t10, "runs": 10}

    ratios = {
        "pgd advbench / plain loop": res["pgd_advbench"]["s"] / res["pgd_plain"]["s"],
        "pgd foolbox / plain loop": res["pgd_foolbox"]["s"] / res["pgd_plain"]["s"],
        "pgd art / plain loop": res["pgd_art"]["s"] / res["pgd_plain"]["s"],
        "cw advbench / foolbox": res["cw_advbench"]["s"] / res["cw_foolbox"]["s"],
        "cw art / foolbox (per image)": res["cw_art"]["s_per_image"]
        / res["cw_foolbox"]["s_per_image"],
        "cw 10-budget curve / 1 budget": t10 / res["cw_advbench"]["s"],
    }
    doc = {
        "model": name,
        "checksum": row["checksum"],
        "n_pgd": args.n,
        "n_cw": args.cw_n,
        "eps_linf": EPS_LINF,
        "pgd_steps": PGD_STEPS,
        "cw": CW,
        "results": res,
        "ratios": ratios,
        "env": describe("cpu"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(
        f"model {name} ({row['checksum'][:10]}), PGD n={args.n} ε={EPS_LINF} "
        f"{PGD_STEPS} steps; C&W n={args.cw_n} ({CW['steps']}x{CW['binary_search_steps']})"
    )
    for k, v in res.items():
        print(
            f"  {k:22s} "
            + "  ".join(
                f"{a}={b:.4g}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items()
            )
        )
    for k, v in ratios.items():
        print(f"  ratio {k:32s} {v:.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
