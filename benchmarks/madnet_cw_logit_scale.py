"""madnet's C&W at a fixed constant measures the logit scale as well as robustness.

The madnet suite's row "CW (c = 0.1)" (cw-l2-box: 1,000 Adam steps, one binary-search step,
L∞ box 0.3) is run again on the same instances of the stored madnet CE model with its
logits multiplied by s. Multiplying the logits changes no prediction and no clean accuracy,
only the size of C&W's loss term c·f against the distance term, so a cell that moves with s
is set by the logit scale of the trained model, which the paper does not report.

    python benchmarks/madnet_cw_logit_scale.py --db results/advbench.db 1 3 6

Needs the store that made results/madnet (the row's stored run gives the instances).
Output of the committed run: benchmarks/madnet_cw_logit_scale.md.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time

import torch

from advbench import data
from advbench.attacks import ATTACKS, unpack
from advbench.catalogue import load_model
from advbench.store import open_db
from advbench.suites import load_suite

MODEL, LABEL = "madnet-ce-mnist-5k", "CW (c = 0.1)"


class Scaled(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, s: float):
        super().__init__()
        self.model, self.s = model, s

    def forward(self, x):
        return self.model(x) * self.s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scales", nargs="+", type=float)
    ap.add_argument("--db", default="results/advbench.db")
    args = ap.parse_args()
    row = next(r for r in load_suite("madnet")["attacks"] if r.get("label") == LABEL)
    params = ATTACKS.get(row["attack"]).resolve(row["params"])
    model, _, _ = load_model(open_db(args.db), MODEL)
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    run = con.execute(
        "select id from runs where model = ? and label = ? and attack = ? and status = "
        "'complete' order by finished_at desc limit 1",
        [MODEL, LABEL, row["attack"]],
    ).fetchone()[0]
    idx = [r[0] for r in con.execute(
        "select idx from samples where run_id = ? order by position", [run])]  # fmt: skip
    x, y = data.load("mnist-5k", "test").get(torch.tensor(idx))
    print(f"{MODEL}, row {LABEL!r} ({row['attack']} {json.dumps(row['params'])}), "
          f"n = {len(y)} instances of stored run {run[:12]}, seed 0\n")  # fmt: skip
    print("| logit scale s | clean | robust | robust % | max L∞ of the examples | time s |")
    print("|---|---|---|---|---|---|")
    for s in args.scales:
        scaled = Scaled(model, s).eval()
        torch.manual_seed(0)
        t = time.time()
        adv = unpack(ATTACKS.get(row["attack"]).factory(params)(scaled, x, y)).adv
        with torch.no_grad():
            clean = scaled(x).argmax(1) == y
            robust = clean & (scaled(adv).argmax(1) == y)
        linf = (adv - x).abs().flatten(1).amax(1).max().item()
        print(f"| {s:g} | {int(clean.sum())}/{len(y)} | {int(robust.sum())}/{len(y)} | "
              f"{100 * robust.float().mean():.1f} | {linf:.3f} | {time.time() - t:.0f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
