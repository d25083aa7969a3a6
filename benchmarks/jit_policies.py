"""Tiering policies end to end: leave-family-out replay on the bundled C-kernel corpus.

For each call-count spec (runtime:0.01:100, runtime:0.001:10, runtime:0.0001:1,
zipf:1.1:100000; seed 0), every policy is fitted on 27 program families and
replayed on the 28th, for every family (`keras_trainer.jit.tiering.policy_eval`), against
the measured per-call and compile times (compile + calls). Prints each policy's
regret (total / the oracle's, which knows every call count) and the issue's
must-show ratios: `recommended` over the oracle, and over the best of `always:*`,
`tiered` and `cost_benefit`. With `--model`, `cost_benefit+model` is scored too
(the model must not have been trained on these kernels: see `--model-folds`).

Usage:
    PYTHONPATH=. python benchmarks/jit_policies.py [--dataset PATH] [--jobs 4] [--json OUT]
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/jit_policies.py --model-folds 4
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SPECS = ("runtime:0.01:100", "runtime:0.001:10", "runtime:0.0001:1", "zipf:1.1:100000")
BASELINES = ("tiered", "cost_benefit")


def score(job: tuple) -> tuple:
    """`(spec, policy, row)` for one policy on one spec, leave-family-out."""
    dataset, spec, name, seed, background = job
    from keras_trainer.jit.tiering.policy_eval import compare_policies
    from keras_trainer.jit.tiering.workload import Workload

    workload = Workload.from_dataset(dataset, calls=spec, seed=seed)
    result = compare_policies(workload, [name], folds=None, seed=seed, background=background)
    return spec, name, result["oracle_s"], result["policies"][name]


def must_show(spec: str, rows: dict) -> list[str]:
    fixed = [name for name in rows if name.startswith("always:")]
    best_name = min(list(fixed) + list(BASELINES), key=lambda n: rows[n]["total_s"])
    ratio = rows["recommended"]["total_s"] / rows[best_name]["total_s"]
    lines = [
        f"  recommended / oracle = {rows['recommended']['regret']:.4f}",
        f"  recommended / best of always:*, tiered, cost_benefit ({best_name}) = {ratio:.4f}",
    ]
    if spec == "runtime:0.01:100":
        ok = rows["recommended"]["regret"] <= 1.03 and ratio <= 1 / 1.02
        lines.append(
            f"  target: <= 1.03 x oracle and >= 2 % faster than the best: {'met' if ok else 'NOT met'}"
        )
    elif spec in ("runtime:0.001:10", "runtime:0.0001:1"):
        lines.append(
            f"  target: within 1 % of the best or faster: {'met' if ratio <= 1.01 else 'NOT met'}"
        )
    return lines


def score_model(dataset: str, specs, folds: int, seed: int) -> dict:
    """`cost_benefit+model` against `cost_benefit` over `folds` family folds: a cost
    model (config/jit_cost_model.json) is trained on each fold's other families."""
    import numpy as np

    from keras_trainer.jit.model.cost_model import cost_features, train_cost_model
    from keras_trainer.jit.tiering.policies import CostBenefitPolicy, ModelCostBenefitPolicy
    from keras_trainer.jit.tiering.policy_eval import family_folds
    from keras_trainer.jit.tiering.workload import Workload, replay

    base = Workload.from_dataset(dataset, calls=specs[0], seed=seed)
    test_folds = family_folds(base, folds, seed)
    raw = cost_features(base.samples)  # once: the folds' models differ only in their rows
    models = []
    for test in test_folds:
        train = np.setdiff1d(np.arange(len(base)), test)
        models.append(train_cost_model(base.take(train), features=raw[train]))
    out = {}
    for spec in specs:
        workload = base.with_calls(spec, seed)
        totals = {"cost_benefit": 0.0, "cost_benefit+model": 0.0}
        for test, model in zip(test_folds, models):
            train = np.setdiff1d(np.arange(len(base)), test)
            fitted = CostBenefitPolicy().fit(workload.take(train))
            totals["cost_benefit"] += replay(workload.take(test), fitted, seed=seed).total_s
            with_model = ModelCostBenefitPolicy(model)
            totals["cost_benefit+model"] += replay(workload.take(test), with_model, seed).total_s
        oracle = workload.oracle().total_s
        out[spec] = {name: total / oracle for name, total in totals.items()}
    return out


def main(argv=None) -> int:
    from keras_trainer.jit import C_KERNELS_PATH
    from keras_trainer.jit.data.collect import read_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=C_KERNELS_PATH)
    parser.add_argument("--specs", nargs="*", default=list(SPECS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument(
        "--model-folds",
        type=int,
        default=0,
        help="also score cost_benefit+model against cost_benefit over this many family folds",
    )
    parser.add_argument("--skip-policies", action="store_true", help="only the cost model")
    parser.add_argument(
        "--background",
        action="store_true",
        help="replay recompiles on a background compile thread (totals: the caller's wall time)",
    )
    args = parser.parse_args(argv)
    if args.model_folds:
        print(f"# cost model, {args.model_folds} family folds (regret; {datetime.date.today()})")
        for spec, row in score_model(args.dataset, args.specs, args.model_folds, args.seed).items():
            print(f"{spec}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()))
        if args.skip_policies:
            return 0
    data = read_dataset(args.dataset)
    names = [f"always:{s}" for s in data["strategies"]] + [
        "tiered",
        "cost_benefit",
        "autotune",
        "recommended",
    ]
    jobs = [
        (args.dataset, spec, name, args.seed, args.background)
        for spec in args.specs
        for name in names
    ]
    started = time.time()
    with ProcessPoolExecutor(args.jobs) as pool:
        outcomes = list(pool.map(score, jobs)) if args.jobs > 1 else list(map(score, jobs))
    results = {}
    for spec, name, oracle, row in outcomes:
        results.setdefault(spec, {"oracle_s": oracle, "policies": {}})["policies"][name] = row
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{datetime.date.today()}, {len(data['samples'])} kernels, leave-family-out, "
        f"seed {args.seed}, {'background compile, ' if args.background else ''}"
        f"{time.time() - started:.0f} s"
    )
    from keras_trainer.jit.tiering.policy_eval import format_comparison

    for spec in args.specs:
        print(f"\n## {spec}")
        print(format_comparison(results[spec]))
        print("\n".join(must_show(spec, results[spec]["policies"])))
    if args.json:
        from keras_trainer.core.saving.atomic import write_json_atomic

        write_json_atomic(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
