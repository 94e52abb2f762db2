"""The store in a browser: SQL views for the common questions, and datasette's metadata.

The database opens in datasette as it is (`datasette results/advbench.db`); `advbench
browse` adds this metadata (what each table, view and column holds, with units) so the
columns explain themselves. The views are part of the schema (migration
0007_browse_views), so `sqlite3`, pandas and datasette all see the same answers:

- `run_accuracy`: each run's robust accuracy with its 95 % Wilson interval and n;
- `accuracy_curves`: the same for complete runs only, ordered as an accuracy-ε curve per
  model and attack row;
- `sample_worst_case`: per test sample, model, norm and ε, whether any untargeted attack
  stored broke it (the per-sample best attack of AutoAttack and carlini-eval), and which;
- `worst_case_accuracy`: robust accuracy under that per-sample worst case, counted over the
  instances every complete untargeted run of the group attacked (migration 0011; the
  report's `worst_case` counts the same way);
- `model_lineage`: each model's chain of parents back to the model it was trained as.
"""

from __future__ import annotations

from advbench.store.migrations import CURRENT_VIEWS

# The views themselves are the schema's (store/migrations.py: each migration carries the
# SQL it created); this module describes them for datasette.
VIEWS = CURRENT_VIEWS


_ACC = "robust accuracy (%): instances classified correctly before and after the attack"
_CI = "95 % Wilson score interval of the robust accuracy (%)"
_MODEL = "model name (models.name)"
COLUMNS: dict[str, dict[str, str]] = {
    "models": {
        "name": "unique model name; checkpoint models/NAME.safetensors beside the database",
        "checksum": "SHA-256 over the weights and the spec that defines the model",
        "arch": "architecture (advbench archs)",
        "dataset": "data set it was trained on (advbench datasets)",
        "activation": "activation function (relu, brelu, ...)",
        "spec": "JSON: architecture, activation and its parameter, normalisation, classes",
        "config": "JSON: the full training or hardening configuration",
        "config_hash": "hash of config: the same configuration is trained once",
        "parent": "model this one was hardened from (models.name); empty for a trained model",
        "defense": "defense applied to the parent (advbench harden --list); empty: none",
        "defense_config": "JSON: the defense's parameters",
        "clean_accuracy": "clean test accuracy (fraction, 0-1) on clean_n test samples",
        "clean_n": "test samples behind clean_accuracy",
        "seed": "training seed",
        "path": "checkpoint path, relative to the database's folder",
        "history": "JSON: per epoch, the loss terms, accuracy, samples/s and seconds (the "
                   "epoch's optimiser-loop time, summed over a resumed training's sessions)",
        "env_id": "software and hardware it was made with (environments.id)",
        "created_at": "when it was stored (UTC, ISO 8601)",
        "wall_s": "time of the process that stored it (seconds; a resumed training's last "
                  "session: history's seconds hold every session's)",
    },
    "runs": {
        "id": "run identity: hash of its full configuration (config)",
        "model": "evaluated model (models.name)",
        "model_checksum": "checksum of the model when the run was made",
        "defense": "the evaluated model's defense",
        "attack": "attack name (advbench attack --list)",
        "label": "row label in its suite (e.g. 'PGD-Linf (2x steps)')",
        "norm": "norm of the budget: linf, l2 or l0",
        "kind": "budget (one ε per run) or minimal (one search judged at every ε)",
        "eps": "perturbation budget ε in [0, 1] pixel units, in the run's norm",
        "config": "JSON: everything that defines the run (hashed into id)",
        "group_id": "runs of one minimal-attack search share it",
        "dataset": "data set of the test samples",
        "split": "data split attacked (test)",
        "n": "instances attacked (targeted all-others: samples x other classes)",
        "seed": "sample-choice and attack seed",
        "scale": "suite scale: smoke, cpu or full; empty: a single attack",
        "suite": "suite the run belongs to (benchmarks/suites)",
        "status": "running (resumable) or complete",
        "started_at": "when it was registered (UTC)",
        "finished_at": "when its last batch was stored (UTC)",
        "wall_s": "attack time (seconds), summed over its batches",
        "samples_per_s": "instances attacked per second",
        "env_id": "software and hardware it ran with (environments.id)",
        "targeted": "empty (untargeted), all-others or random",
        "threat": "white-box, transfer or proxy",
        "source_model": "model the examples were crafted on (models.name); empty: white-box",
        "source_checksum": "checksum of the source model",
        "only_correct": "1: only test samples the model classifies correctly were attacked",
        "n_samples": "test samples behind the n instances",
        "gradient": "gradient seen through a non-differentiable defense (straight-through, "
        "masked); empty where there is no choice",
        "source_rule": "the suite row's source: root, arch:ARCH, proxy:ARCH or model:NAME",
    },
    "samples": {
        "run_id": "run (runs.id)",
        "idx": "index of the test sample in the data set's test split",
        "position": "instance position within the run (one per sample and target)",
        "label": "true class",
        "target": "target class of a targeted instance; empty: untargeted",
        "clean_pred": "the model's prediction on the clean input",
        "adv_pred": "the model's prediction on the adversarial example",
        "success": "1: the attack reached its goal within ε (judged by the model itself)",
        "l0": "pixels changed (count)",
        "l2": "L2 distance of the example from the input (pixel units, [0, 1] scale)",
        "linf": "L∞ distance of the example from the input (pixel units)",
        "min_norm": "smallest adversarial perturbation found by a minimal attack (run's norm)",
        "x_l2": "L2 norm of the clean input (for ρ_adv = ‖δ‖2/‖x‖2)",
        "x_linf": "L∞ norm of the clean input (for an L∞ attack's ρ = ‖δ‖∞/‖x‖∞)",
        "carried_from": "run at a smaller ε whose example this is (a shortcut: not attacked again)",
        "eps": "the budget this row was judged at",
        "fwd": "forward passes (or queries) spent on this instance",
        "bwd": "backward passes spent on this instance",
        "trace": "JSON: per-restart best result, where the attack restarts",
        "start_idx": "test index of the start image (targeted HopSkipJump)",
        "init_failed": "1: the attack could not start (neither robust nor broken)",
        "best_norm": "distance of the closest adversarial iterate seen (run's norm)",
        "loss_trace": "JSON: best margin over the attack's iterations (checklist)",
        "grad_zero": "1: the input gradient was exactly zero (gradient masking sign)",
        "grad_nonfinite": "1: the input gradient had NaN or inf",
        "grad_passes": "backward passes observed for the gradient checks",
        "grad_unavailable": "1: the model gave no input gradient",
        "noise_flips": "random-noise draws within ε that changed the prediction",
        "output_kind": "logits, probabilities or one-hot: what the model outputs",
        "source_success": "transfer: 1 where the example fooled its source model",
    },
    "measurements": {
        "id": "measurement identity: hash of its configuration",
        "model": _MODEL,
        "model_checksum": "checksum of the model when measured",
        "metric": "loss-sensitivity, jacobian, jacobian-adv, train-distance, ns-sensitivity, "
        "embedding-jacobian, noise-loss or davies-bouldin",
        "run_id": "run whose adversarial examples it was taken at (runs.id); empty: clean",
        "dataset": "data set",
        "split": "data split",
        "n": "points measured",
        "seed": "sample-choice seed",
        "value": "the metric's mean over the points (its own unit, see the metric)",
        "per_sample": "JSON: the value at each point",
        "config": "JSON: the measurement's configuration",
        "created_at": "when it was stored (UTC)",
        "env_id": "environments.id",
    },
    "examples": {
        "run_id": "run (runs.id)",
        "batch": "batch number within the run",
        "path": "safetensors file of the batch's adversarial examples, beside the database",
        "sha256": "SHA-256 of that file (a changed file is detected)",
        "count": "examples in the file",
    },
    "crafted": {
        "key": "hash of what the examples depend on (source, attack, parameters, ε, batch, seed)",
        "source_checksum": "checksum of the model they were crafted on",
        "attack": "attack name",
        "eps": "budget ε (empty for a minimal attack: one search for every ε)",
        "batch": "batch number within the run that crafted them",
        "first_run": "the run whose batch crafted them (runs.id)",
        "path": "safetensors file of the examples, their cost and restart state",
        "sha256": "SHA-256 of that file (a changed file is crafted again)",
        "count": "instances in the file",
        "meta": "JSON: restart traces and crafting diagnostics per instance",
        "created_at": "when they were crafted (UTC)",
    },
    "environments": {
        "id": "hash of the fields below",
        "advbench": "advbench version",
        "python": "Python version",
        "torch": "PyTorch version",
        "torchvision": "torchvision version",
        "foolbox": "foolbox version",
        "art": "adversarial-robustness-toolbox version",
        "numpy": "numpy version",
        "device": "device the work ran on",
        "git_commit": "advbench's git commit, where known",
        "platform": "operating system and machine, with the CPU model and the instruction "
        "set torch's CPU kernels use (recorded since 2026-12-07)",
        "first_seen": "when this environment was first recorded (UTC)",
    },
    "_migrations": {
        "name": "schema migration applied",
        "applied_at": "when (UTC)",
    },
    "run_accuracy": {
        "run_id": "runs.id",
        "model": _MODEL,
        "defense": "the model's defense",
        "attack": "attack name",
        "row_label": "suite row label",
        "norm": "budget norm",
        "eps": "budget ε",
        "threat": "white-box, transfer or proxy",
        "source_model": "crafting model of a transfer or proxy run",
        "targeted": "empty (untargeted), all-others or random",
        "suite": "suite",
        "scale": "scale",
        "seed": "seed",
        "status": "running or complete",
        "n": "instances judged (failed starts left out)",
        "robust": "instances robust",
        "robust_accuracy_pct": _ACC,
        "ci_low_pct": _CI + ": low",
        "ci_high_pct": _CI + ": high",
    },
    "accuracy_curves": {
        "model": _MODEL,
        "defense": "the model's defense",
        "attack_row": "suite row label, else the attack name",
        "norm": "budget norm",
        "threat": "white-box, transfer or proxy",
        "targeted": "empty (untargeted), all-others or random",
        "eps": "budget ε",
        "robust_accuracy_pct": _ACC,
        "ci_low_pct": _CI + ": low",
        "ci_high_pct": _CI + ": high",
        "n": "instances judged",
        "seed": "seed",
        "scale": "scale",
        "suite": "suite",
        "run_id": "runs.id",
    },
    "sample_worst_case": {
        "model": _MODEL,
        "norm": "budget norm",
        "eps": "budget ε",
        "seed": "seed of the runs compared",
        "idx": "test sample index",
        "robust_under_all": "1: no stored untargeted attack broke it at this ε",
        "attacks": "complete untargeted runs that attacked it at this ε",
        "broken_by": "the attack rows that broke it",
    },
    "worst_case_accuracy": {
        "model": _MODEL,
        "norm": "budget norm",
        "eps": "budget ε",
        "seed": "seed of the runs compared",
        "n": "test samples",
        "robust": "samples robust under every attack",
        "fewest_attacks_per_sample": "attacks behind each counted sample: every complete "
        "untargeted run of the group",
        "robust_accuracy_pct": "robust accuracy (%) under the per-sample worst case",
        "ci_low_pct": _CI + ": low",
        "ci_high_pct": _CI + ": high",
    },
    "model_lineage": {
        "model": _MODEL,
        "defense": "its defense",
        "dataset": "data set",
        "arch": "architecture",
        "root": "the trained model it descends from",
        "depth": "hardening steps from the root",
        "lineage": "root → ... → model (defense)",
    },
}
DESCRIPTIONS = {
    "models": "Trained and hardened models: one row per checkpoint.",
    "runs": "Attack runs: one per (model, attack, parameters, ε, samples, seed).",
    "samples": "Per-instance outcome of each run, judged by the model's own prediction.",
    "measurements": "Quantities of a model that are not an attack's outcome (ρ, ‖J‖F, ...).",
    "examples": "Adversarial examples kept for measurements, one file per batch.",
    "crafted": "Transfer and black-box examples crafted once on a source model and reused "
    "for every target model (a cache: no stored number depends on it).",
    "environments": "Library versions and device behind models, runs and measurements.",
    "_migrations": "Schema migrations applied to this database.",
    "run_accuracy": "Robust accuracy of every run, with its 95 % Wilson interval.",
    "accuracy_curves": "Accuracy against ε per model and attack row (complete runs).",
    "sample_worst_case": "Per test sample: robust under every stored untargeted attack?",
    "worst_case_accuracy": "Robust accuracy under the per-sample worst case over attacks.",
    "model_lineage": "Each model's chain of parents back to its trained root.",
}


def metadata(database: str) -> dict:
    """datasette metadata for a database named `database` (its file's stem)."""
    return {
        "title": "advbench results",
        "description": "Runs stored by advbench: robust accuracy is judged by each model's "
        "own prediction; every accuracy has n and a 95 % Wilson interval.",
        "databases": {
            database: {
                "tables": {
                    name: {"description": DESCRIPTIONS[name], "columns": cols}
                    for name, cols in COLUMNS.items()
                }
            }
        },
    }


__all__ = ["COLUMNS", "VIEWS", "metadata"]
