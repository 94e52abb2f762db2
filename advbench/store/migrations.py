"""Named, ordered schema migrations. Never edit one after release: append a new one.

Each applied migration is recorded in `_migrations`, so a database knows its schema.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


def _initial(db: sqlite_utils.Database) -> None:
    db["environments"].create(
        {
            "id": str,
            "advbench": str,
            "python": str,
            "torch": str,
            "torchvision": str,
            "foolbox": str,
            "art": str,
            "numpy": str,
            "device": str,
            "git_commit": str,
            "platform": str,
            "first_seen": str,
        },
        pk="id",
    )
    db["models"].create(
        {
            "name": str,
            "checksum": str,
            "arch": str,
            "dataset": str,
            "activation": str,
            "spec": str,
            "config": str,
            "config_hash": str,
            "parent": str,
            "defense": str,
            "defense_config": str,
            "clean_accuracy": float,
            "clean_n": int,
            "seed": int,
            "path": str,
            "history": str,
            "env_id": str,
            "created_at": str,
            "wall_s": float,
        },
        pk="name",
        foreign_keys=[("env_id", "environments", "id")],
    )
    db["runs"].create(
        {
            "id": str,
            "model": str,
            "model_checksum": str,
            "defense": str,
            "attack": str,
            "label": str,
            "norm": str,
            "kind": str,
            "eps": float,
            "config": str,
            "group_id": str,
            "dataset": str,
            "split": str,
            "n": int,
            "seed": int,
            "scale": str,
            "suite": str,
            "status": str,
            "started_at": str,
            "finished_at": str,
            "wall_s": float,
            "samples_per_s": float,
            "env_id": str,
        },
        pk="id",
        foreign_keys=[("model", "models", "name"), ("env_id", "environments", "id")],
    )
    db["samples"].create(
        {
            "run_id": str,
            "idx": int,
            "position": int,
            "label": int,
            "target": int,
            "clean_pred": int,
            "adv_pred": int,
            "success": int,
            "l0": float,
            "l2": float,
            "linf": float,
            "min_norm": float,
        },
        pk=("run_id", "idx"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["runs"].create_index(["model", "attack", "eps"])
    db["runs"].create_index(["group_id"])


def _sample_input_norm(db: sqlite_utils.Database) -> None:
    # ‖x‖2 of the clean input, so DeepFool's ρ_adv = ‖δ‖2 / ‖x‖2 is a query, not a re-run.
    db["samples"].add_column("x_l2", float)


def _instances_and_threat_models(db: sqlite_utils.Database) -> None:
    # Targeted runs (`--targeted all-others`) have several instances per test sample, so a
    # sample row is keyed by its instance position, not by the data set index.
    db["samples"].transform(pk=("run_id", "position"))
    for name, kind in (
        ("eps", float),  # the budget this row was judged at
        ("fwd", float),  # forward passes (or queries) spent on this instance
        ("bwd", float),  # backward passes spent on this instance
        ("trace", str),  # JSON: per-restart best result, where the attack restarts
    ):
        db["samples"].add_column(name, kind)
    for name, kind in (
        ("targeted", str),  # null (untargeted), all-others or random
        ("threat", str),  # white-box, transfer or proxy
        ("source_model", str),  # where the examples were crafted (transfer, proxy)
        ("source_checksum", str),
        ("only_correct", int),
        ("n_samples", int),  # test samples; n counts instances
    ):
        db["runs"].add_column(name, kind)
    db.execute("update runs set threat = 'white-box', only_correct = 0, n_samples = n")
    db.execute("update samples set eps = (select eps from runs where runs.id = samples.run_id)")


def _faithful_cells(db: sqlite_utils.Database) -> None:
    # Which gradient a white-box attack saw through a non-differentiable defense. Runs on
    # feature-squeezing made before this migration followed the masked (true) gradient.
    db["runs"].add_column("gradient", str)
    db.execute(
        "update runs set gradient = 'masked' where source_model is null "
        "and attack not in ('bpda-pgd', 'hsj', 'noise') and model in "
        "(select name from models where defense = 'feature-squeezing')"
    )
    # The source a transfer row declared (root, arch:ARCH, proxy:ARCH, model:NAME): cells of
    # a table are keyed by it, not by each model's own proxy or root. Older runs: unknown.
    db["runs"].add_column("source_rule", str)
    # A run's threat follows from where it was crafted (the report keys cells by it).
    db.execute(
        "update runs set threat = case when source_model is null then 'white-box' "
        "when (select json_extract(config, '$.kind') from models "
        "where name = runs.source_model) = 'proxy' then 'proxy' else 'transfer' end"
    )
    # Per instance: the test index of the start point (targeted HopSkipJump starts from an
    # image of the target class) and whether the attack could start at all.
    db["samples"].add_column("start_idx", int)
    db["samples"].add_column("init_failed", int)


def _measurements_and_examples(db: sqlite_utils.Database) -> None:
    # Quantities of a model that are not an attack's outcome (loss sensitivity, ‖J‖_F,
    # training-set distance, Davies-Bouldin): one row per measurement with its per-sample
    # values, the points it was taken at (a run's stored examples, or clean test points),
    # n, seed and configuration, so a table cell is a query.
    db["measurements"].create(
        {
            "id": str,
            "model": str,
            "model_checksum": str,
            "metric": str,
            "run_id": str,  # the run whose adversarial examples it was taken at (else null)
            "dataset": str,
            "split": str,
            "n": int,
            "seed": int,
            "value": float,
            "per_sample": str,  # JSON list
            "config": str,
            "created_at": str,
            "env_id": str,
        },
        pk="id",
        foreign_keys=[("model", "models", "name"), ("env_id", "environments", "id")],
    )
    db["measurements"].create_index(["model", "metric"])
    # Adversarial examples of runs whose tables need them (training-set distance, ‖J‖_F at
    # DeepFool points): one safetensors file per batch beside the database, written with
    # the batch's sample rows, and its SHA-256 here so a changed file is detected.
    db["examples"].create(
        {"run_id": str, "batch": int, "path": str, "sha256": str, "count": int},
        pk=("run_id", "batch"),
        foreign_keys=[("run_id", "runs", "id")],
    )


def _attack_diagnostics(db: sqlite_utils.Database) -> None:
    # What the evaluation checklist reads per instance (advbench.diagnostics): the smallest
    # adversarial iterate's distance, the best-margin trace, input-gradient flags, noise
    # stability and output kind of the evaluated model, and for transfer runs whether the
    # example fooled its source. NULL on runs stored before this migration.
    for name, kind in (
        ("best_norm", float),
        ("loss_trace", str),
        ("grad_zero", int),
        ("grad_nonfinite", int),
        ("grad_passes", int),
        ("grad_unavailable", int),
        ("noise_flips", int),
        ("output_kind", str),
        ("source_success", int),
    ):
        db["samples"].add_column(name, kind)


# The views as migration 0007 made them, frozen: browse.VIEWS may change later only through a
# new migration, never by rewriting what 0007 did.
_VIEWS_0007 = {
    "run_accuracy": """
select r.id as run_id, r.model, r.defense, r.attack, r.label as row_label, r.norm, r.eps,
       r.threat, r.source_model, r.targeted, r.suite, r.scale, r.seed, r.status, c.n,
       c.robust, round(100.0 * c.robust / c.n, 2) as robust_accuracy_pct,
       round(100 * max(0.0, min(1.0, ((1.0 * c.robust / c.n) + 3.8415999999999997/(2.0*c.n)) / (1 + 3.8415999999999997/c.n) - 1.96 * sqrt((1.0 * c.robust / c.n) * (1 - (1.0 * c.robust / c.n)) / c.n + 3.8415999999999997/(4.0*c.n*c.n)) / (1 + 3.8415999999999997/c.n))), 2) as ci_low_pct,
       round(100 * max(0.0, min(1.0, ((1.0 * c.robust / c.n) + 3.8415999999999997/(2.0*c.n)) / (1 + 3.8415999999999997/c.n) + 1.96 * sqrt((1.0 * c.robust / c.n) * (1 - (1.0 * c.robust / c.n)) / c.n + 3.8415999999999997/(4.0*c.n*c.n)) / (1 + 3.8415999999999997/c.n))), 2) as ci_high_pct
  from runs r join (select s.run_id,
       count(s.run_id) - coalesce(sum(s.init_failed), 0) as n,
       coalesce(sum(s.clean_pred = s.label and s.adv_pred = s.label and not coalesce(s.init_failed, 0)), 0) as robust
  from samples s group by s.run_id) c on c.run_id = r.id
 where c.n > 0""",
    "accuracy_curves": """
select model, defense, coalesce(row_label, attack) as attack_row, norm, threat, targeted,
       eps, robust_accuracy_pct, ci_low_pct, ci_high_pct, n, seed, scale, suite, run_id
  from run_accuracy where status = 'complete'
 order by model, attack_row, norm, eps""",
    "sample_worst_case": """
select r.model, r.norm, r.eps, r.seed, s.idx,
       min(case when s.clean_pred = s.label and s.adv_pred = s.label and not coalesce(s.init_failed, 0) then 1 else 0 end) as robust_under_all,
       count(distinct r.id) as attacks,
       group_concat(case when s.clean_pred = s.label and s.adv_pred = s.label and not coalesce(s.init_failed, 0) then null else coalesce(r.label, r.attack) end, '; ')
         as broken_by
  from samples s join runs r on r.id = s.run_id
 where r.status = 'complete' and r.targeted is null and not coalesce(s.init_failed, 0)
 group by r.model, r.norm, r.eps, r.seed, s.idx""",
    "worst_case_accuracy": """
select w.model, w.norm, w.eps, w.seed, count(*) as n, sum(w.robust_under_all) as robust,
       min(w.attacks) as fewest_attacks_per_sample,
       round(100.0 * sum(w.robust_under_all) / count(*), 2) as robust_accuracy_pct,
       round(100 * max(0.0, min(1.0, ((1.0 * sum(w.robust_under_all) / count(*)) + 3.8415999999999997/(2.0*count(*))) / (1 + 3.8415999999999997/count(*)) - 1.96 * sqrt((1.0 * sum(w.robust_under_all) / count(*)) * (1 - (1.0 * sum(w.robust_under_all) / count(*))) / count(*) + 3.8415999999999997/(4.0*count(*)*count(*))) / (1 + 3.8415999999999997/count(*)))), 2) as ci_low_pct,
       round(100 * max(0.0, min(1.0, ((1.0 * sum(w.robust_under_all) / count(*)) + 3.8415999999999997/(2.0*count(*))) / (1 + 3.8415999999999997/count(*)) + 1.96 * sqrt((1.0 * sum(w.robust_under_all) / count(*)) * (1 - (1.0 * sum(w.robust_under_all) / count(*))) / count(*) + 3.8415999999999997/(4.0*count(*)*count(*))) / (1 + 3.8415999999999997/count(*)))), 2) as ci_high_pct
  from sample_worst_case w
 group by w.model, w.norm, w.eps, w.seed""",
    "model_lineage": """
with recursive chain(name, root, depth, lineage) as (
  select name, name, 0, name from models where parent is null
  union all
  select m.name, c.root, c.depth + 1,
         c.lineage || ' → ' || m.name || ' (' || coalesce(m.defense, 'trained') || ')'
    from models m join chain c on m.parent = c.name
)
select c.name as model, m.defense, m.dataset, m.arch, c.root, c.depth, c.lineage
  from chain c join models m on m.name = c.name""",
}


def _browse_views(db: sqlite_utils.Database) -> None:
    # SQL views for the common questions (advbench/browse.py): each run's robust accuracy
    # with its Wilson interval, accuracy-ε curves, the per-sample worst case over attacks
    # and its accuracy, and each model's lineage. No table changes.
    for name, sql in _VIEWS_0007.items():
        db.execute(f"drop view if exists {name}")
        db.execute(f"create view {name} as {sql.strip()}")  # as create_views wrote it


def _crafted_cache(db: sqlite_utils.Database) -> None:
    # Examples crafted on a transfer or black-box row's source, shared by every target
    # model of that row (advbench/crafted.py): a cache, so no run or sample changes.
    db["crafted"].create(
        {
            "key": str,
            "source_checksum": str,
            "attack": str,
            "eps": float,
            "batch": int,
            "first_run": str,  # the run whose batch crafted it
            "path": str,
            "sha256": str,
            "count": int,
            "meta": str,  # JSON: restart traces and crafting diagnostics per instance
            "created_at": str,
        },
        pk="key",
    )
    db["crafted"].create_index(["source_checksum"])


def _sample_input_linf(db: sqlite_utils.Database) -> None:
    # ‖x‖∞ of the clean input: zantedeschi's ρ is ‖δ‖/‖x‖ in the attack's own norm (the
    # authors' metrics.py: ord=crafter.ord, L∞ for FGSM), so ρ in L∞ is a query too.
    db["samples"].add_column("x_linf", float)


def _shortcut_chains(db: sqlite_utils.Database) -> None:
    # A budget attack's run over several ε may take an instance broken at the next smaller
    # ε as broken (engine/identity.carried): the run whose attack crafted its example, else NULL.
    db["samples"].add_column("carried_from", str)


# migration 0011's view, frozen: the worst case counts an instance only where every run it
# is taken over attacked (and started) it, as the report's `worst_case` does; 0007's
# counted an instance attacked by any of them, so an attack run on fewer instances mixed
# samples judged by fewer attacks into one accuracy.
_VIEWS_0011 = {
    "worst_case_accuracy": """select w.model, w.norm, w.eps, w.seed, count(*) as n, sum(w.robust_under_all) as robust,
       min(w.attacks) as fewest_attacks_per_sample,
       round(100.0 * sum(w.robust_under_all) / count(*), 2) as robust_accuracy_pct,
       round(100 * max(0.0, min(1.0, ((1.0 * sum(w.robust_under_all) / count(*)) + 3.8415999999999997/(2.0*count(*))) / (1 + 3.8415999999999997/count(*)) - 1.96 * sqrt((1.0 * sum(w.robust_under_all) / count(*)) * (1 - (1.0 * sum(w.robust_under_all) / count(*))) / count(*) + 3.8415999999999997/(4.0*count(*)*count(*))) / (1 + 3.8415999999999997/count(*)))), 2) as ci_low_pct,
       round(100 * max(0.0, min(1.0, ((1.0 * sum(w.robust_under_all) / count(*)) + 3.8415999999999997/(2.0*count(*))) / (1 + 3.8415999999999997/count(*)) + 1.96 * sqrt((1.0 * sum(w.robust_under_all) / count(*)) * (1 - (1.0 * sum(w.robust_under_all) / count(*))) / count(*) + 3.8415999999999997/(4.0*count(*)*count(*))) / (1 + 3.8415999999999997/count(*)))), 2) as ci_high_pct
  from sample_worst_case w
  join (select model, norm, eps, seed, count(*) as runs from runs
         where status = 'complete' and targeted is null
         group by model, norm, eps, seed) g
    on g.model = w.model and g.norm is w.norm and g.eps is w.eps and g.seed is w.seed
 where w.attacks = g.runs
 group by w.model, w.norm, w.eps, w.seed""",
}


def _worst_case_in_all(db: sqlite_utils.Database) -> None:
    # One definition of the per-sample worst case (issue 32): the view now counts the
    # instances every complete untargeted run of its group attacked. No table changes.
    for name, sql in _VIEWS_0011.items():
        db.execute(f"drop view if exists {name}")
        db.execute(f"create view {name} as {sql.strip()}")


# The views a store migrated to the newest schema has (a later migration that changes one
# adds its own frozen SQL and points this at it).
CURRENT_VIEWS = {**_VIEWS_0007, **_VIEWS_0011}

MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("0001_initial", _initial),
    ("0002_sample_input_norm", _sample_input_norm),
    ("0003_instances_and_threat_models", _instances_and_threat_models),
    ("0004_faithful_cells", _faithful_cells),
    ("0005_measurements_and_examples", _measurements_and_examples),
    ("0006_attack_diagnostics", _attack_diagnostics),
    ("0007_browse_views", _browse_views),
    ("0008_crafted_cache", _crafted_cache),
    ("0009_sample_input_linf", _sample_input_linf),
    ("0010_shortcut_chains", _shortcut_chains),
    ("0011_worst_case_in_all", _worst_case_in_all),
]
