"""The training loop behind `train` and `harden`: deterministic, resumable, with progress.

Every batch is seeded from (seed, epoch, batch), and each epoch's order from (seed, epoch),
so a run resumed from its saved state ends with the weights an uninterrupted run gives.
State is saved at each epoch end, every `save_every` seconds, and on Ctrl-C, so an
interruption loses at most one batch (a hard kill at most `save_every` seconds).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from advbench.data import DataSplit
from advbench.models.checkpoint import save_tensors

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
OPTIMIZERS = ("adam", "sgd", "rmsprop")


def cross_entropy_terms(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    logits = model(x)
    return {"ce": nn.functional.cross_entropy(logits, y), "_logits": logits}


def make_optimizer(name: str, params, lr: float, weight_decay: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)


def batch_seed(seed: int, *parts: int) -> int:
    """A distinct, reproducible seed per (seed, epoch, batch)."""
    s = seed
    for p in parts:
        s = (s * 1_000_003 + p + 1) % (2**63 - 1)
    return s


@dataclass
class FitConfig:
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    seed: int
    device: str = "cpu"
    save_every: float = 30.0

    def identity(self) -> dict[str, Any]:
        """The fields that change the trained weights (not where or how often we save)."""
        return {
            k: getattr(self, k)
            for k in ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "seed")
        }


@dataclass
class _State:
    epoch: int = 0
    batch: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    seen: int = 0
    correct: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    elapsed: float = 0.0


def _flatten_optimizer(opt) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class Resume:
    """Partial training state beside the checkpoints, keyed by the training's config hash.

    Weights, optimizer state and counters are one safetensors file (the counters in its
    metadata), replaced atomically: a kill -9 at any moment leaves the previous state or
    the new one, never new weights with old counters (which two files allowed)."""

    def __init__(self, folder: Path, key: str):
        self.folder, self.key = folder, key
        self.tensors = folder / f"{key}.partial.safetensors"
        self.meta = folder / f"{key}.partial.json"  # written by 0.1.0; read, then removed

    def save(self, model, opt, state: _State) -> None:
        self.tensors.parent.mkdir(parents=True, exist_ok=True)
        opt_t, opt_meta = _flatten_optimizer(opt)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update(opt_t)
        doc = {"state": state.__dict__, "optimizer": opt_meta}
        save_tensors(self.tensors, tensors, metadata={"resume": json.dumps(doc)})
        self.meta.unlink(missing_ok=True)

    def load(self, model, opt) -> _State | None:
        if not self.tensors.exists():
            return None
        from safetensors import safe_open

        with safe_open(str(self.tensors), "pt") as fh:  # one read: counters and tensors
            doc = (fh.metadata() or {}).get("resume")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        if doc is None and self.meta.exists():  # state saved by 0.1.0 as two files
            doc = self.meta.read_text()
        if doc is None:
            return None
        doc = json.loads(doc)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        _restore_optimizer(
            opt, {k: v for k, v in tensors.items() if k.startswith("opt.")}, doc["optimizer"]
        )
        return _State(**doc["state"])

    def clear(self) -> None:
        """Remove this state and any derived from it."""
        for p in (self.tensors, self.meta):
            p.unlink(missing_ok=True)
        for p in self.folder.glob(f"{self.key}~*"):
            p.unlink(missing_ok=True)

    def derived(self, suffix: str) -> Resume:
        """Partial state of work done on the way (a λ=auto trial), cleared with this one."""
        return Resume(self.folder, f"{self.key}~{suffix}")

    def notes(self) -> Path:
        """A JSON file for small results kept across an interruption, cleared with this."""
        return self.folder / f"{self.key}~notes.json"


def fit(
    model: nn.Module,
    data: DataSplit,
    cfg: FitConfig,
    *,
    loss_fn: LossFn = cross_entropy_terms,
    resume: Resume | None = None,
    progress=None,
) -> list[dict[str, float]]:
    """Train `model` in place; return per-epoch history (each loss term separately)."""
    device = torch.device(cfg.device)
    model.to(device)
    opt = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
    state = (resume.load(model, opt) if resume else None) or _State()
    n = len(data)
    n_batches = (n + cfg.batch_size - 1) // cfg.batch_size
    task = None
    if progress is not None:
        task = progress.add_task(
            "train",
            total=cfg.epochs * n_batches,
            completed=state.epoch * n_batches + state.batch,
            metrics="",
        )
    last_save = time.monotonic()
    try:
        while state.epoch < cfg.epochs:
            perm = torch.randperm(
                n, generator=torch.Generator().manual_seed(batch_seed(cfg.seed, state.epoch))
            )
            model.train()
            t0 = time.monotonic()
            while state.batch < n_batches:
                idx = perm[state.batch * cfg.batch_size : (state.batch + 1) * cfg.batch_size]
                x, y = data.get(idx)
                x, y = x.to(device), y.to(device)
                torch.manual_seed(batch_seed(cfg.seed, state.epoch, state.batch))
                terms = loss_fn(model, x, y)
                logits = terms.pop("_logits")
                loss = sum(terms.values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                b = len(y)
                for k, v in terms.items():
                    state.sums[k] = state.sums.get(k, 0.0) + float(v.detach()) * b
                state.sums["loss"] = state.sums.get("loss", 0.0) + float(loss.detach()) * b
                state.seen += b
                hard = y if y.dim() == 1 else y.argmax(1)  # soft targets: a teacher's
                state.correct += int((logits.argmax(1) == hard).sum())
                state.batch += 1
                dt = time.monotonic() - t0
                state.elapsed += dt
                t0 = time.monotonic()
                if task is not None:
                    progress.update(
                        task,
                        advance=1,
                        description=f"epoch {state.epoch + 1}/{cfg.epochs}",
                        metrics=f"loss {state.sums['loss'] / state.seen:.4f} "
                        f"acc {state.correct / state.seen:.3f} "
                        f"{b / max(dt, 1e-9):.0f} samples/s",
                    )
                if resume and time.monotonic() - last_save > cfg.save_every:
                    resume.save(model, opt, state)
                    last_save = time.monotonic()
            row = {k: v / state.seen for k, v in state.sums.items()}
            row.update(
                epoch=state.epoch + 1,
                accuracy=state.correct / state.seen,
                samples_per_s=state.seen / max(state.elapsed, 1e-9),
                # the epoch's optimiser-loop time, summed over the sessions an interrupted
                # training took (the state saves it), so a resumed model's training time is
                # the sum over its history, not its last session's (models.wall_s)
                seconds=state.elapsed,
            )
            state.history.append(row)
            state.epoch, state.batch, state.sums, state.seen, state.correct = (
                state.epoch + 1,
                0,
                {},
                0,
                0,
            )
            state.elapsed = 0.0
            if resume:
                resume.save(model, opt, state)
                last_save = time.monotonic()
    except KeyboardInterrupt:
        if resume:
            resume.save(model, opt, state)
        raise
    model.eval()
    return state.history


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(x[i : i + batch_size].to(device)).argmax(1).cpu()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def clean_accuracy(model: nn.Module, data: DataSplit, batch_size: int = 500) -> tuple[float, int]:
    """Clean accuracy (fraction) and sample count on a whole split."""
    correct = 0
    for i in range(0, len(data), batch_size):
        x, y = data.get(torch.arange(i, min(i + batch_size, len(data))))
        correct += int((predict(model, x, batch_size) == y).sum())
    return correct / max(len(data), 1), len(data)
