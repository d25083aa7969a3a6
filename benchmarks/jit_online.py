"""Online learning in replay: does `AdaptiveJIT.update()` decide the rest of a workload better?

On the bundled C-kernel corpus, split into family folds (default 4): a cost model
(config/jit_cost_model.json) is trained on the other folds' families; the held-out
fold's functions, in a random order, are a workload on unseen families. The
`cost_benefit+model` policy decides the first half with that model; what it
measured there (the O0 probe, the compile time of every build it made, the time
per call of every build it ran: `measured_records`, the records
`AdaptiveJIT(record_to=)` writes) becomes the records of an update: the model is
fine-tuned from its weights on its training functions plus those records
(`fine_tune`, as `AdaptiveJIT.update()` does, 5 epochs). The second half is then
decided by the updated and by the frozen model. The update's targets for the
strategies a record did not measure (`fine_tune(unmeasured=)`): the model's own
prediction, shifted by the record's measured error, or pooled (the errors of the
workload's records per strategy and per record, shrunk: `AdaptiveJIT.update()`'s
default). The `*_explore` columns do the same with bounded exploration
(`ModelCostBenefitPolicy(explore=--explore)`, a recording `AdaptiveJIT`'s default):
functions that ran long enough have their untimed strategies built and timed, paid
in the replayed totals; `whole_*` compares the whole workload, frozen without
exploration against exploring all along with the second half decided by the
pooled update. Reported per call-count spec, summed over the folds: the regret
(total / the oracle's of that half or of the whole), and, for reference, the
second half with `cost_benefit` (constant speed-ups) and with a model fine-tuned
on the first half's complete measurements (every strategy; what a JIT that timed
everything would have learnt).

With `--folds 0` every family is its own fold (leave-family-out: 28 trainings); a
fold's "workload" is then one unseen program family.

Usage:
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/jit_online.py [--folds 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from keras_trainer.jit.data.collect import host_cpu  # noqa: E402
from keras_trainer.jit.tiering.policies import EXPLORE_BUDGET  # noqa: E402

SPECS = ("runtime:0.01:100", "runtime:0.001:10", "runtime:0.0001:1")
COLUMNS = (
    "first_half",
    "second_frozen",
    "second_updated",
    "second_updated_shifted",
    "second_updated_pooled",
    "second_cost_benefit",
    "second_full_records",
    # Bounded exploration (ModelCostBenefitPolicy(explore=)), its cost paid in the replay:
    "first_half_explore",
    "second_frozen_explore",
    "second_updated_explore_prediction",
    "second_updated_explore_pooled",
    # The whole workload (both halves / the whole oracle): frozen without exploration
    # against exploring all along and deciding the second half with the model updated
    # by the pooled rule (what a recording AdaptiveJIT does by default).
    "whole_frozen",
    "whole_explore_updated",
)


def run(dataset: str, specs, folds: int, seed: int, epochs: int, explore: float) -> dict:
    import json

    import numpy as np

    from keras_trainer.jit.model.cost_model import (
        COST_MODEL_CONFIG,
        copy_cost_model,
        cost_features,
        fine_tune,
        train_cost_model,
    )
    from keras_trainer.jit.tiering.policies import CostBenefitPolicy, ModelCostBenefitPolicy
    from keras_trainer.jit.tiering.policy_eval import family_folds
    from keras_trainer.jit.tiering.workload import Workload, measured_records, replay

    with open(COST_MODEL_CONFIG) as f:
        config = json.load(f)
    config["training"]["verbose"] = 0
    base = Workload.from_dataset(dataset, calls=specs[0], seed=seed)
    raw = cost_features(base.samples)
    rng = np.random.default_rng(seed)
    sums = {spec: dict.fromkeys(COLUMNS + ("oracle_first", "oracle_second"), 0.0) for spec in specs}
    measured = {
        spec: {"records": 0, "timed_levels": 0, "timed_levels_explore": 0} for spec in specs
    }
    for fold, test in enumerate(family_folds(base, folds or None, seed)):
        train = np.setdiff1d(np.arange(len(base)), test)
        model = train_cost_model(base.take(train), config, features=raw[train])
        order = rng.permutation(test)
        first, second = order[: len(order) // 2], order[len(order) // 2 :]
        full = copy_cost_model(model)  # the reference: every strategy of the first half
        full_records = [dict(base.samples[i]) for i in first]
        fine_tune(full, full_records, base.take(train), raw[train], epochs=epochs)
        for spec in specs:
            workload = base.with_calls(spec, seed)
            halves = workload.take(first), workload.take(second)
            row = sums[spec]
            row["oracle_first"] += halves[0].oracle().total_s
            row["oracle_second"] += halves[1].oracle().total_s

            def updated(
                records, unmeasured, explore_budget=None, model=model, train=train, halves=halves
            ):
                """The second half's total, decided by the model updated on `records`."""
                learnt = fine_tune(
                    copy_cost_model(model),
                    records,
                    base.take(train),
                    raw[train],
                    epochs=epochs,
                    unmeasured=unmeasured,
                )
                policy = ModelCostBenefitPolicy(learnt, explore_budget)
                return replay(halves[1], policy, seed).total_s

            seen = replay(halves[0], ModelCostBenefitPolicy(model), seed=seed)
            row["first_half"] += seen.total_s
            row["second_frozen"] += replay(halves[1], ModelCostBenefitPolicy(model), seed).total_s
            records = measured_records(halves[0], seen)
            measured[spec]["records"] += len(records)
            measured[spec]["timed_levels"] += sum(len(r["timings_ns"]) - 1 for r in records)
            row["second_updated"] += updated(records, "prediction")
            row["second_updated_shifted"] += updated(records, "shifted")
            row["second_updated_pooled"] += updated(records, "pooled")
            constant = CostBenefitPolicy().fit(workload.take(train))
            row["second_cost_benefit"] += replay(halves[1], constant, seed).total_s
            row["second_full_records"] += replay(
                halves[1], ModelCostBenefitPolicy(full), seed
            ).total_s
            # Bounded exploration, all along: its builds and timed calls are in the totals.
            explored = replay(halves[0], ModelCostBenefitPolicy(model, explore), seed)
            row["first_half_explore"] += explored.total_s
            row["second_frozen_explore"] += replay(
                halves[1], ModelCostBenefitPolicy(model, explore), seed
            ).total_s
            records = measured_records(halves[0], explored)
            measured[spec]["timed_levels_explore"] += sum(len(r["timings_ns"]) - 1 for r in records)
            row["second_updated_explore_prediction"] += updated(records, "prediction", explore)
            later = updated(records, "pooled", explore)
            row["second_updated_explore_pooled"] += later
            row["whole_explore_updated"] += explored.total_s + later
        print(f"fold {fold + 1}: {len(test)} functions", flush=True)
    out = {}
    for spec, row in sums.items():
        row["whole_frozen"] = row["first_half"] + row["second_frozen"]
        oracle = {
            "first": row["oracle_first"],
            "second": row["oracle_second"],
            "whole": row["oracle_first"] + row["oracle_second"],
        }
        out[spec] = {column: row[column] / oracle[column.split("_")[0]] for column in COLUMNS}
        out[spec]["oracle_s"] = oracle["whole"]
        out[spec].update(measured[spec])
    return out


def main(argv=None) -> int:
    from keras_trainer.jit import C_KERNELS_PATH

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=C_KERNELS_PATH)
    parser.add_argument("--specs", nargs="*", default=list(SPECS))
    parser.add_argument("--folds", type=int, default=4, help="family folds (0: leave-family-out)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of each update")
    parser.add_argument(
        "--explore",
        type=float,
        default=EXPLORE_BUDGET,
        help="exploration budget of the *_explore columns (ModelCostBenefitPolicy(explore=))",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    started = time.time()
    results = run(args.dataset, args.specs, args.folds, args.seed, args.epochs, args.explore)
    print(
        f"# {host_cpu()}, {os.cpu_count()} CPUs, {datetime.date.today()}, "
        f"{args.folds or 'leave-family-out'} family folds, seed {args.seed}, update {args.epochs} epochs, "
        f"explore budget {args.explore}, {time.time() - started:.0f} s "
        "(regret = total / oracle of that half, or of the whole workload)"
    )
    for spec, row in results.items():
        print(spec)
        for column in COLUMNS:
            print(f"  {column:<36} {row[column]:.4f}")
        print(
            f"  timed strategies per record besides O0: {row['timed_levels'] / row['records']:.2f}"
            f" (exploring: {row['timed_levels_explore'] / row['records']:.2f})"
        )
    if args.json:
        from keras_trainer.core.saving.atomic import write_json_atomic

        write_json_atomic(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
