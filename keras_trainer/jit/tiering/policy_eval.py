"""Scoring tiering policies on a workload, fitted out of fold by program family.

`compare_policies(workload, names)` splits the functions into folds of whole
program families (every family its own fold by default: leave-family-out), fits
each policy on the other folds' functions with their call counts, replays it on
the fold, and sums over the folds. The regret is the total over the oracle's
(each function compiled once with its best strategy for its call count).

Example:

>>> workload = Workload.from_dataset(C_KERNELS_PATH, calls="runtime:0.01:100", seed=0)
>>> compare_policies(workload, ["always:O3", "recommended"], folds=4)["policies"]["recommended"]
{'total_s': ..., 'regret': ..., 'decide_s': ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from keras_trainer.errors import ConfigError
from keras_trainer.jit.tiering.policies import get_policy
from keras_trainer.jit.tiering.workload import Workload, replay

#: Policies scored when none are named: the fixed strategies, then the online ones.
ONLINE_POLICIES = ("tiered", "cost_benefit", "autotune", "recommended")


def default_policy_names(workload: Workload, with_model: bool = False) -> list[str]:
    names = [f"always:{s}" for s in workload.strategies] + list(ONLINE_POLICIES)
    if with_model:
        names.insert(-2, "cost_benefit+model")
    return names


def family_folds(workload: Workload, folds: Optional[int] = None, seed: int = 0) -> list:
    """Index arrays of the test folds: whole families (records without a family are
    their own group); `folds=None` gives every family its own fold."""
    groups = [f if f is not None else f"#{i}" for i, f in enumerate(workload.families)]
    names = sorted(set(groups))
    if folds is None or folds >= len(names):
        assignment = {name: k for k, name in enumerate(names)}
    else:
        if folds < 2:
            raise ConfigError(f"folds: needs at least 2 folds, got {folds}")
        order = np.random.default_rng(seed).permutation(len(names))
        assignment = {names[j]: rank % folds for rank, j in enumerate(order)}
    fold_of = np.array([assignment[g] for g in groups])
    return [np.flatnonzero(fold_of == k) for k in sorted(set(fold_of.tolist()))]


def compare_policies(
    workload: Workload,
    names: Optional[Sequence[str]] = None,
    folds: Optional[int] = None,
    model: Any = None,
    seed: int = 0,
    background: bool = False,
) -> dict:
    """Out-of-fold replay of each policy; `{"oracle_s", "policies": {name: {...}}}`.

    Args:
        workload: the functions and their call counts.
        names: policy names (default: `always:` every strategy, `tiered`,
            `cost_benefit`, `cost_benefit+model` when `model` is given,
            `autotune`, `recommended`).
        folds: number of family folds (`None`: leave-family-out).
        model: a trained cost model (`keras_trainer.jit.model.cost_model.CostModel`),
            used as given in every fold: it must not have seen `workload`'s families.
        seed: folds and measurement noise.
        background: replay recompiles on a background compile thread
            (`replay(background=True)`: totals are then the caller's wall time).

    Returns:
        `{"oracle_s": s, "policies": {name: {"total_s", "regret", "decide_s"}}}`.
    """
    names = list(names or default_policy_names(workload, model is not None))
    for name in names:
        get_policy(name, model=model)  # an unknown name fails before any replay
    test_folds = family_folds(workload, folds, seed)
    oracle = workload.oracle().total_s
    results = {}
    for name in names:
        total, decide = 0.0, 0.0
        for test in test_folds:
            train = np.setdiff1d(np.arange(len(workload)), test)
            policy = get_policy(name, model=model)
            if hasattr(policy, "background"):  # fitted for the JIT it is replayed in
                policy.background = background
            policy.fit(workload.take(train) if len(train) else workload)
            outcome = replay(workload.take(test), policy, seed=seed, background=background)
            total, decide = total + outcome.total_s, decide + outcome.decide_s
        results[name] = {"total_s": total, "regret": total / oracle, "decide_s": decide}
    return {"oracle_s": oracle, "policies": results}


def format_comparison(result: dict) -> str:
    """A table of the policies' totals and regrets, best first."""
    lines = [
        f"{'policy':<22} {'total_s':>12} {'regret':>8}",
        f"{'oracle':<22} {result['oracle_s']:>12.3f} {1.0:>8.4f}",
    ]
    ranked = sorted(result["policies"].items(), key=lambda item: item[1]["total_s"])
    for name, row in ranked:
        lines.append(f"{name:<22} {row['total_s']:>12.3f} {row['regret']:>8.4f}")
    return "\n".join(lines)
