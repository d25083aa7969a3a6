"""Judging strategy choices in runtime terms: labels, regret, speed-ups, fallback.

A JIT cares about the time its chosen strategies take, not about accuracy.
Given each sample's measured time under every strategy (a `(n, k)` matrix
`times`, columns in class order), this module derives labels with the tie
rule, scores a list of choices against the per-sample oracle, every fixed
strategy and the majority class, and picks the fallback threshold.

Definitions (docs/features.md, "Runtime evaluation"):

- **regret** = total time of the chosen strategies / total time of the
  per-sample fastest (the oracle); 1.0 is perfect.
- **geometric-mean regret** = exp(mean(log(t_chosen / t_fastest))): the typical
  per-kernel slowdown, not dominated by the longest kernels.
- **speed-up vs a fixed strategy** = its total time / the chosen total time
  (> 1: the choices are faster than always using it).
- **best fixed strategy** = the fixed strategy with the lowest total time on
  the rows scored (a hindsight baseline, so the comparison is conservative).

Example:

>>> times = np.array([[10.0, 5.0], [4.0, 8.0]])
>>> runtime_report([1, 0], times, ["O0", "O2"])["regret"]
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_trainer.errors import DataError
from keras_trainer.jit.data.collect import choose_label


def times_matrix(
    outcomes: Sequence[Any], names: Sequence[str], name: str = "optimization_results"
) -> np.ndarray:
    """`(n, k)` float64 times from per-sample dicts `{strategy name: time}`.

    Raises:
        DataError: naming the sample and strategy of a missing, non-numeric
            or non-positive time.
    """
    rows = np.zeros((len(outcomes), len(names)), dtype=np.float64)
    for i, outcome in enumerate(outcomes):
        if not isinstance(outcome, dict):
            raise DataError(
                f"{name}[{i}]: expected a dict of times by strategy name like the other samples, "
                f"got {type(outcome).__name__}"
            )
        for j, strategy in enumerate(names):
            if strategy not in outcome:
                raise DataError(
                    f"{name}[{i}]: no time for strategy {strategy!r} (has {sorted(outcome)}); "
                    "the config's jit.strategies must all be measured"
                )
            value = outcome[strategy]
            if isinstance(value, bool) or not isinstance(
                value, (int, float, np.integer, np.floating)
            ):
                raise DataError(f"{name}[{i}][{strategy!r}]: expected a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise DataError(
                    f"{name}[{i}][{strategy!r}]: time must be finite and > 0, got {value}"
                )
            rows[i, j] = float(value)
    return rows


def labels_from_times(
    times: np.ndarray,
    names: Sequence[str],
    tie_tolerance: float,
    preference: Sequence[str] | None = None,
) -> np.ndarray:
    """Class index per row: the cheapest to compile strategy (first in
    `preference`, default `names` order) within `tie_tolerance` of the row's
    fastest (`collect.choose_label`)."""
    if tie_tolerance < 0:
        raise DataError(f"tie_tolerance must be >= 0, got {tie_tolerance}")
    names = list(names)
    preference = list(preference) if preference else None
    return np.array(
        [
            choose_label(dict(zip(names, row)), names, tie_tolerance, preference)
            for row in np.asarray(times)
        ],
        dtype=np.int64,
    )


def speeds(times: np.ndarray) -> np.ndarray:
    """Per-row speed of each strategy relative to the fastest, `t_min / t_k` in (0, 1]:
    the targets of the `expected_slowdown` loss."""
    times = np.asarray(times, dtype=np.float64)
    return (times.min(axis=1, keepdims=True) / times).astype(np.float32)


def best_fixed_strategy(times: np.ndarray) -> int:
    """Index of the fixed strategy with the lowest total time over the rows."""
    return int(np.argmin(np.asarray(times).sum(axis=0)))


def _scores(chosen: np.ndarray, times: np.ndarray) -> tuple[float, float, float]:
    picked = times[np.arange(len(times)), chosen]
    best = times.min(axis=1)
    return (
        float(picked.sum()),
        float(picked.sum() / best.sum()),
        float(np.exp(np.mean(np.log(picked / best)))),
    )


def runtime_report(
    chosen: Sequence[int],
    times: np.ndarray,
    names: Sequence[str],
    labels: Sequence[int] | None = None,
    majority_class: int | None = None,
) -> dict[str, Any]:
    """Scores strategy choices in runtime terms.

    Args:
        chosen: class index chosen for each row.
        times: `(n, k)` measured times, columns in `names` order.
        names: strategy names.
        labels: true labels (for accuracy); default: `labels_from_times` at 0 tolerance.
        majority_class: the majority class of the training data (the
            majority baseline); default: the majority of `labels`.

    Returns:
        A dict: `samples`, `accuracy`, `regret`, `geomean_regret`,
        `fixed` (name -> `{"regret", "geomean_regret", "speedup", "accuracy"}`),
        `best_fixed`, `speedup_vs_best_fixed`, `majority` (`{"strategy",
        "accuracy", "regret", "geomean_regret"}`) and `oracle_total`.
    """
    times = np.asarray(times, dtype=np.float64)
    chosen = np.asarray(chosen, dtype=np.int64)
    if times.ndim != 2 or times.shape[1] != len(names) or len(chosen) != len(times):
        raise DataError(
            f"runtime_report: need times of shape (n, {len(names)}) and n choices, got times "
            f"{times.shape} and {len(chosen)} choices"
        )
    if len(times) == 0:
        raise DataError("runtime_report: no rows to score")
    labels = np.argmin(times, axis=1) if labels is None else np.asarray(labels)
    total, regret, geomean = _scores(chosen, times)
    fixed = {}
    for k, name in enumerate(names):
        fixed_total, fixed_regret, fixed_geomean = _scores(np.full(len(times), k), times)
        fixed[name] = {
            "regret": fixed_regret,
            "geomean_regret": fixed_geomean,
            "speedup": fixed_total / total,
            "accuracy": float(np.mean(labels == k)),
        }
    best = names[best_fixed_strategy(times)]
    if majority_class is None:
        majority_class = int(np.bincount(labels, minlength=len(names)).argmax())
    majority = dict(fixed[names[majority_class]], strategy=names[majority_class])
    majority.pop("speedup")
    return {
        "samples": len(times),
        "accuracy": float(np.mean(chosen == labels)),
        "regret": regret,
        "geomean_regret": geomean,
        "fixed": fixed,
        "best_fixed": best,
        "speedup_vs_best_fixed": fixed[best]["speedup"],
        "majority": majority,
        "oracle_total": float(times.min(axis=1).sum()),
    }


def format_runtime_report(report: dict) -> str:
    """The runtime report as a few lines of text (what the CLI prints)."""
    fallback = report.get("fallback")
    model = (
        f"model (+ fallback to {fallback['strategy']} below p={float(fallback['threshold']):.3f})"
        if fallback
        else "model"
    )
    lines = [
        f"runtime on {report['samples']} samples (regret = total time of the choices / per-sample best):",
        f"  {model:<14} accuracy {report['accuracy']:.3f}  regret {report['regret']:.4f}  "
        f"geomean {report['geomean_regret']:.4f}",
    ]
    majority = report["majority"]
    lines.append(
        f"  majority ({majority['strategy']}) accuracy {majority['accuracy']:.3f}  regret "
        f"{majority['regret']:.4f}  geomean {majority['geomean_regret']:.4f}"
    )
    for name, row in report["fixed"].items():
        marker = "  <- best fixed" if name == report["best_fixed"] else ""
        lines.append(
            f"  always {name:<9} regret {row['regret']:.4f}  geomean {row['geomean_regret']:.4f}  "
            f"model speed-up {row['speedup']:.3f}x{marker}"
        )
    lines.append(
        f"  speed-up vs the best fixed strategy ({report['best_fixed']}): "
        f"{report['speedup_vs_best_fixed']:.3f}x"
    )
    return "\n".join(lines)


def validation_rows(
    labels: np.ndarray, groups: Sequence[Any] | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices `(train, validation)` holding out about `fraction` of the rows.

    With `groups` (program families), whole groups, drawn with `seed`, so the
    validation rows are code of families the model has not trained on; else a
    shuffled share of every class of `labels`.

    Raises:
        DataError: the split leaves no training or no validation rows.
    """
    n = len(labels)
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise DataError(f"groups has {len(groups)} entries but there are {n} rows")
        for group in rng.permutation(np.unique(groups)):
            if held.sum() >= fraction * n:
                break
            held |= groups == group
        kind = f"{len(np.unique(groups))} groups"
    else:
        labels = np.asarray(labels)
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            held[members[: int(round(len(members) * fraction))]] = True
        kind = "rows"
    if held.all() or not held.any():
        raise DataError(
            f"training.validation_split={fraction} leaves {int((~held).sum())} training and "
            f"{int(held.sum())} validation rows out of {n} ({kind}); give more data or change "
            "the split"
        )
    return rng.permutation(np.flatnonzero(~held)), np.flatnonzero(held)


def _by_group(values: np.ndarray, groups: Sequence[Any]) -> np.ndarray:
    """`(rows, groups)`: each row's value in its group's column, zeros elsewhere."""
    if len(groups) != len(values):
        raise DataError(f"groups has {len(groups)} entries but there are {len(values)} rows")
    index = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    spread = np.zeros((len(values), index.max() + 1))
    spread[np.arange(len(values)), index] = values
    return spread


def _sign_test(group_totals: np.ndarray) -> np.ndarray:
    """One-sided exact sign-test p-value per row of `(candidates, groups)` totals:
    the chance of at least that many gaining groups among those that change, were
    gains and losses equally likely."""
    gains = (group_totals > 0).sum(axis=1)
    changed = gains + (group_totals < 0).sum(axis=1)
    return np.array(
        [
            sum(math.comb(n, k) for k in range(g, n + 1)) / 2.0**n if n else 1.0
            for g, n in zip(gains, changed)
        ]
    )


def choose_fallback_threshold(
    probabilities: np.ndarray,
    times: np.ndarray | None,
    labels: np.ndarray | None,
    fallback: int,
    confidence: float = 0.0,
    resamples: int = 500,
    seed: int = 0,
    groups: Sequence[Any] | None = None,
) -> float:
    """The confidence threshold that serves the validation rows best.

    Below the threshold (top probability < threshold) the fallback strategy
    is used. Candidates are 0, 1 and the rows' top probabilities; the one with
    the lowest total time wins (with times), else the highest accuracy; ties
    go to the higher (safer) threshold.

    With times and `confidence` > 0, a threshold below 1 (one that lets the
    model choose somewhere) must also save time against always falling back
    in at least `confidence` of `resamples` bootstrap resamples of the rows:
    a few hundred validation rows say little about unseen code, and a
    saving that does not hold up under resampling is not worth the risk of
    being slower than the safe default. With `groups` (each row's program
    family, say), the evidence is counted in groups instead: kernels of one
    family are alike, so its rows are not independent evidence about code
    the model has not seen, and a bootstrap over a handful of groups
    overstates the confidence. The threshold must then save time in more
    groups than it loses in, by an exact one-sided sign test at level
    `1 - confidence` (at 0.95, five groups that all gain and none that
    loses are the least evidence that passes).
    """
    probabilities = np.asarray(probabilities)
    top = probabilities.max(axis=1)
    model_choice = probabilities.argmax(axis=1)
    # Rows by top probability, highest first: a threshold lets the model choose
    # for a prefix of them, so every candidate's score is a cumulative sum.
    order = np.argsort(-top, kind="stable")
    ranked = top[order]
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
    thresholds = np.r_[1.0 + 1e-9, ranked[ends]]  # highest (always fall back) first

    def through(values: np.ndarray) -> np.ndarray:
        """`values` summed over the rows each threshold leaves to the model."""
        sums = np.cumsum(values[order], axis=0)[ends]
        return np.concatenate([np.zeros((1,) + sums.shape[1:]), sums])

    if times is None:
        labels = np.asarray(labels)
        gain = through((model_choice == labels).astype(float) - (fallback == labels))
        tolerance = 1e-12
    else:
        times = np.asarray(times, dtype="float64")
        rows = np.arange(len(times))
        saving = times[rows, fallback] - times[rows, model_choice]
        gain = through(saving)
        tolerance = 1e-12 * times[:, fallback].sum()
        if confidence > 0:
            if groups is None:
                # Each resample as how often it draws each row: (rows, resamples).
                counts = (
                    np.random.default_rng(seed)
                    .multinomial(len(times), np.full(len(times), 1.0 / len(times)), size=resamples)
                    .T
                )
                evidence = (through(saving[:, None] * counts) > 0).mean(axis=1)
            else:
                evidence = 1.0 - _sign_test(through(_by_group(saving, groups)))
            evidence[0] = 1.0  # always falling back needs no evidence
            gain = np.where(evidence >= confidence, gain, -np.inf)
    # The highest threshold among the best (the safer one).
    best = np.flatnonzero(gain >= gain.max() - tolerance)[0]
    return float(min(thresholds[best], 1.0))


def apply_fallback(
    probabilities: np.ndarray, fallback: dict | None, names: Sequence[str]
) -> np.ndarray:
    """Chosen class per row: the most likely one, or `fallback["strategy"]` where
    the top probability is below `fallback["threshold"]`."""
    probabilities = np.asarray(probabilities)
    choice = probabilities.argmax(axis=1)
    if not fallback:
        return choice
    strategy = fallback["strategy"]
    if strategy not in names:
        raise DataError(f"fallback strategy {strategy!r} is not one of {list(names)}")
    return np.where(
        probabilities.max(axis=1) >= float(fallback["threshold"]),
        choice,
        list(names).index(strategy),
    )
