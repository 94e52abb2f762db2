"""Measurements of a model that are not an attack's outcome, stored per sample.

- `loss-sensitivity` (zantedeschi 001:175, eq. 3): mean over test points of ‖∇x J(θ, x, y)‖₂,
  the cross-entropy's gradient of each sample alone. The loss is summed over the batch, so
  each sample's gradient is its own; a mean-reduced loss (what ART's `loss_gradient` helper
  differentiates) would scale every gradient by 1/batch size.
- `jacobian` (jakubovitz 003:114, Table 1): mean ‖J(x)‖_F of the logits' Jacobian w.r.t. the
  input, at clean test points; `jacobian-adv` the same at a run's stored examples whose
  prediction the attack changed.
- `train-distance` (zantedeschi 001:173): mean over a run's adversarial examples (inputs
  whose prediction the attack changed, as for ρ) of the squared L2 distance to the nearest
  training image divided by the clean input's L2 norm, min‖x_adv − x_train‖₂² / ‖x‖₂: the
  paper says only "average nearest-neighbour distance"; this is what produced its Table 2
  (the authors' `nearest_nieghbour_dist` in src/metrics.py, in ART's history at
  298682aa5: `euclidean_dist` is squared, then divided by ‖x‖₂; plain L2 gave 5.99 where
  the paper has 3.90 for the CNN, this gives ≈ 3.9). Neighbours are searched in chunks, so
  memory stays bounded on full MNIST.
- `ns-sensitivity` (fidel Algorithm 1): NsLoss's own term per test point, the mean over N
  random perturbations on the L2 sphere of radius NsEps of Σ_L mean_j |A_j(x + d) − A_j(x)|
  / NsEps over every activation layer and the logits (`defenses.nsloss`, whose batch mean
  this is), at the data family's NsLoss setting (MNIST: NsEps 1, N 5; CIFAR: 3, 10) for
  every model alike, the perturbations drawn from the measurement's seed.
- `embedding-jacobian` (madnet §3, λ_Jacob): ‖∂e(x)/∂x‖_F of the penultimate-layer embedding
  at clean test points, exact (one backward pass per embedding dimension): the Jacobian term
  of MAD's loss, per sample.
- `noise-loss` (zantedeschi §3, GDA's own objective): per test point, the cross-entropy at
  x + N(0, σ²) clipped to [0, 1], the mean over K draws, at the data family's GDA setting
  (MNIST σ 0.3, CIFAR 0.05; K 10 as GDA's copies), the noise drawn from the measurement's
  seed. GDA fine-tunes on exactly these copies (`defenses.training.gda`), so it is the
  quantity GDA acts on; Table 3's local loss sensitivity is what the paper says follows.
- `davies-bouldin` (madnet): scikit-learn's Davies–Bouldin index of the penultimate-layer
  embeddings of test points, grouped by true label (lower: tighter, better separated).
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils
import torch
import torch.nn.functional as F

from advbench.errors import BadInput, unknown
from advbench.store import CHANGED

METRICS = {
    "loss-sensitivity": "mean ‖∇x CE‖₂ at clean test points (zantedeschi Table 3)",
    "jacobian": "mean ‖J(x)‖_F of the logits at clean test points (jakubovitz Table 1)",
    "jacobian-adv": "mean ‖J(x)‖_F at a run's stored adversarial examples (jakubovitz Table 1)",
    "train-distance": "mean min ‖x_adv − x_train‖₂² / ‖x‖₂ of a run's adversarial "
    "examples (zantedeschi Table 2)",
    "ns-sensitivity": "NsLoss's sensitivity term at clean test points (fidel Alg. 1)",
    "embedding-jacobian": "‖∂e(x)/∂x‖_F of the embedding at clean test points (madnet)",
    "davies-bouldin": "Davies–Bouldin index of test embeddings by label (madnet)",
    "noise-loss": "cross-entropy under GDA's Gaussian noise at clean test points (zantedeschi)",
}
AT_POINTS = ("loss-sensitivity", "jacobian", "ns-sensitivity", "embedding-jacobian", "noise-loss")
AT_RUN = ("jacobian-adv", "train-distance")  # taken at a run's kept examples


def loss_sensitivity(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample ‖∇x CE(f(x_i), y_i)‖₂."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad.flatten(1).norm(dim=1).detach()


def jacobian_fro(model, x: torch.Tensor, embedding: bool = False) -> torch.Tensor:
    """Per-sample ‖∂z(x_i)/∂x_i‖_F of the logits (of the embedding with `embedding`), exact:
    one backward pass per output. Samples do not interact in an eval-mode model, so the
    gradient of Σ_i z_k(x_i) holds row k of each sample's Jacobian."""
    x = x.detach().clone().requires_grad_(True)
    logits = (model.embed(x) if embedding else model(x)).flatten(1)
    total = torch.zeros(len(x), device=x.device)
    for k in range(logits.shape[1]):
        (g,) = torch.autograd.grad(logits[:, k].sum(), x, retain_graph=True)
        total += g.flatten(1).pow(2).sum(1)
    return total.sqrt().detach()


def nearest_distance(points: torch.Tensor, reference, chunk: int = 2048) -> torch.Tensor:
    """Per point, the L2 distance to its nearest image of `reference` (a DataSplit or a
    tensor), comparing against `chunk` reference images at a time."""
    flat = points.flatten(1).double()
    best = torch.full((len(flat),), float("inf"), dtype=torch.float64)
    total = len(reference)
    for start in range(0, total, chunk):
        idx = torch.arange(start, min(start + chunk, total))
        ref = reference[idx] if isinstance(reference, torch.Tensor) else reference.get(idx)[0]
        d = torch.cdist(flat, ref.flatten(1).double().to(flat.device))
        best = torch.minimum(best, d.min(dim=1).values.cpu())
    return best


# NsLoss's setting per data family (fidel Table I), the same for every model measured
NS_SETTING = {"mnist": (1.0, 5), "cifar": (3.0, 10), "imagenet": (3.0, 10)}


def gda_setting(family: str) -> tuple[float, int]:
    """GDA's noise σ and copies per sample on a data-set family, as the `gda` defense
    resolves them (zantedeschi: σ 0.3 MNIST, 0.05 CIFAR; 10 copies)."""
    from advbench.defenses import resolve

    p = resolve("gda", {}, family)
    return float(p["sigma"]), int(p["copies"])


def noise_loss(model, x: torch.Tensor, y: torch.Tensor, sigma: float, copies: int,
               seed: int) -> torch.Tensor:
    """Per-sample GDA objective: mean over `copies` draws of the cross-entropy at
    clip(x + σ·n, 0, 1), n ~ N(0, I) drawn from `seed` (one draw per copy, as the `gda`
    transform draws them), each sample's loss its own (no batch mean)."""
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(len(x), dtype=torch.float64)
    with torch.no_grad():
        for _ in range(copies):
            noisy = (x + sigma * torch.randn(x.shape, generator=gen).to(x.device)).clamp(0, 1)
            total += F.cross_entropy(model(noisy), y, reduction="none").double().cpu()
    return total / copies


def ns_sensitivity(model, x: torch.Tensor, eps: float, samples: int, seed: int) -> torch.Tensor:
    """Per-sample NsLoss term: mean over `samples` perturbations d (‖d‖₂ = eps, drawn from
    `seed`) of Σ_L mean_j |A_j(x + d) − A_j(x)| / eps, layers L the activations and logits."""
    from advbench.defenses.training import unit_l2

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out0, acts0 = model.forward_with_activations(x)
        base = [*acts0, out0]
        total = torch.zeros(len(x), dtype=torch.float64)
        for _ in range(samples):
            d = eps * unit_l2(torch.randn(x.shape, generator=gen)).to(x.device)
            out, acts = model.forward_with_activations(x + d)
            for a, a0 in zip([*acts, out], base, strict=True):
                total += (a - a0).abs().flatten(1).mean(1).double().cpu()
    return total / (samples * eps)


def davies_bouldin(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    from sklearn.metrics import davies_bouldin_score

    return float(davies_bouldin_score(embeddings.flatten(1).numpy(), labels.numpy()))


def _batched(fn, *tensors, batch: int = 100) -> torch.Tensor:
    return torch.cat(
        [fn(*(t[i : i + batch] for t in tensors)) for i in range(0, len(tensors[0]), batch)]
    )


def _drawn(fn, seed: int, *tensors, batch: int = 100) -> torch.Tensor:
    """`_batched` for a measurement that draws noise: each batch its own draw, seeded from
    the measurement's seed and the batch's place (1, 2, ...), so a value does not depend on
    the batch before it."""
    place = [0]

    def one(*parts):
        place[0] += 1
        return fn(*parts, seed * 1_000_003 + place[0])

    return _batched(one, *tensors, batch=batch)


def measure(
    db: sqlite_utils.Database,
    model_name: str,
    metric: str,
    *,
    n: int,
    seed: int,
    run: str | None = None,
    device: str = "cpu",
    data_dir=None,
    env_id: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Take one measurement of a stored model and record it; returns the stored row. An
    identical measurement already stored is returned as is unless `force`."""
    from advbench import data as datasets
    from advbench.catalogue import load_model
    from advbench.config import canonical_json, config_hash
    from advbench.engine import select_samples
    from advbench.store import examples, now

    run_row = check(db, model_name, metric, n, run)
    model, _, row = load_model(db, model_name, device)
    model = model.to(device).eval()
    if metric in ("davies-bouldin", "embedding-jacobian") and not hasattr(model, "embed"):
        raise BadInput(f"model {model_name} has no embedding layer (an inference "
                       "wrapper); measure the model it wraps")  # fmt: skip
    if metric == "ns-sensitivity" and not hasattr(model, "forward_with_activations"):
        raise BadInput(f"model {model_name} ({row['arch']}) does not expose its activations; "
                       "ns-sensitivity needs a model built from advbench's layers")  # fmt: skip
    cfg = {"model": model_name, "model_checksum": row["checksum"], "metric": metric,
           "n": n, "seed": seed, "run_id": run_row["id"] if run_row else None}  # fmt: skip
    if metric in REVISION:  # its definition changed: measurements before it are not reused
        cfg["revision"] = REVISION[metric]
    mid = config_hash(cfg)
    if not force and db["measurements"].count_where("id = ?", [mid]):
        return db["measurements"].get(mid)
    test = datasets.load(row["dataset"], "test", data_dir=data_dir)
    if run_row is None:
        idx = select_samples(test.labels, min(n, len(test)), seed)
        x, y = test.get(idx)
        x, y = x.to(device), y.to(device)
        if metric == "loss-sensitivity":
            values = _batched(lambda a, b: loss_sensitivity(model, a, b), x, y)
        elif metric == "jacobian":
            values = _batched(lambda a: jacobian_fro(model, a), x)
        elif metric == "embedding-jacobian":
            values = _batched(lambda a: jacobian_fro(model, a, embedding=True), x)
        elif metric == "ns-sensitivity":
            eps, samples = NS_SETTING[datasets.family(row["dataset"])]
            values = _drawn(lambda a, s: ns_sensitivity(model, a, eps, samples, s), seed, x)
        elif metric == "noise-loss":
            sigma, copies = gda_setting(datasets.family(row["dataset"]))
            values = _drawn(lambda a, b, s: noise_loss(model, a, b, sigma, copies, s), seed,
                            x, y)  # fmt: skip
        else:
            with torch.no_grad():
                emb = _batched(lambda a: model.embed(a).cpu(), x)
            values = torch.tensor([davies_bouldin(emb, y.cpu())])
        count = len(idx)
    else:
        positions, adv = examples.load(db, run_row["id"])
        # the adversarial examples proper: inputs whose prediction the attack changed (a
        # failure or a clean point put back is no adversarial point)
        keep = changed_positions(db, run_row["id"])
        chosen = torch.isin(positions, torch.tensor(sorted(keep), dtype=torch.long))
        adv = adv[chosen]
        if metric == "train-distance":
            train = datasets.load(row["dataset"], "train", data_dir=data_dir)
            x_l2 = clean_norms(db, run_row["id"], positions[chosen].tolist())
            values = nearest_distance(adv, train).pow(2) / x_l2
        else:
            values = _batched(lambda a: jacobian_fro(model, a), adv.to(device))
        count = len(values)
    values = values.double().cpu()
    record = {
        "id": mid,
        "model": model_name,
        "model_checksum": row["checksum"],
        "metric": metric,
        "run_id": cfg["run_id"],
        "dataset": row["dataset"],
        "split": "test",
        "n": count,
        "seed": seed,
        "value": float(values.mean()) if count else None,
        "per_sample": json.dumps([round(float(v), 7) for v in values]),
        "config": canonical_json(cfg),
        "created_at": now(),
        "env_id": env_id,
    }
    db["measurements"].upsert(record, pk="id")
    return record


def check(db: sqlite_utils.Database, model_name: str, metric: str, n: int, run: str | None):
    """Everything about a measurement request that can be wrong, checked before anything is
    written (the environment row included); returns the run it is taken at, if any."""
    from advbench.catalogue import model_row

    if metric not in METRICS:
        raise unknown("metric", metric, METRICS)
    if n <= 0:
        raise BadInput(f"--n {n} must be > 0")
    row = model_row(db, model_name)
    if run is not None and metric not in AT_RUN:
        raise BadInput(f"--run is only for {', '.join(AT_RUN)}; {metric} is taken at test points")
    if metric == "davies-bouldin":
        classes = json.loads(row["spec"] or "{}").get("classes", 10)
        if n <= classes:  # the index needs more points than clusters
            raise BadInput(f"--n {n}: davies-bouldin needs more test points than the "
                           f"{classes} classes; use --n {classes + 1} or more")  # fmt: skip
    return resolve_run(db, row, run) if metric in AT_RUN else None


# Metrics whose definition changed after measurements were stored.
REVISION = {"train-distance": "squared-over-x-l2"}


def clean_norms(db: sqlite_utils.Database, run_id: str, positions: list[int]) -> torch.Tensor:
    """‖x‖₂ of the clean inputs at a run's `positions`, in that order."""
    by = dict(db.execute("select position, x_l2 from samples where run_id = ?", [run_id]))
    return torch.tensor([by[p] for p in positions], dtype=torch.float64)


def changed_positions(db: sqlite_utils.Database, run_id: str) -> set[int]:
    """Instances whose prediction the attack changed (`store.CHANGED`)."""
    return {
        r[0]
        for r in db.execute(
            f"select s.position from samples s where s.run_id = ? and {CHANGED}", [run_id]
        )
    }


def resolve_run(db: sqlite_utils.Database, model_row: dict, run: str | None) -> dict:
    """A run id, or a run label (the model's newest complete run of that label with stored
    examples, at its largest ε); without one, the model's newest such run."""
    rows = list(
        db.query(
            "select r.* from runs r where r.model = ? and r.status = 'complete' and exists "
            "(select 1 from examples e where e.run_id = r.id) order by r.finished_at desc, "
            "r.eps desc",
            [model_row["name"]],
        )
    )
    if run is not None:
        rows = [r for r in rows if run in (r["id"], r["label"], r["attack"])]
    if not rows:
        what = f"matching {run!r} " if run else ""
        raise BadInput(
            f"model {model_row['name']} has no complete run {what}with stored examples; run a "
            "suite row that keeps them (zantedeschi's FGSM (minimal), jakubovitz's DeepFool)"
        )
    return rows[0]
