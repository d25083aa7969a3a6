"""Does the JIT strategy model pay for itself? Cross-validated runtime regret on the bundled corpus.

On the bundled C-kernel dataset (or --dataset), with out-of-fold choices for
every kernel, compares:

- the seed config (config/model_config.json) trained on class labels,
- the cost-aware config (config/jit_cost_aware.json: expected-slowdown loss),
- the cost-aware model with its fallback rule (threshold chosen on validation
  data: whole held-out families under leave-family-out CV),
- a scikit-learn RandomForest on the same 12 features and labels,
- every fixed strategy, the majority class and the per-sample oracle,

under 5-fold stratified CV and 5-fold leave-program-family-out CV (each
family's kernels are held out together, every family once). Reported:
accuracy (against the tie-rule labels), regret (total time of the chosen
strategies / the oracle's) and geometric-mean regret. Times are the dataset's
measured medians, so no re-timing is needed.

Usage:
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/jit_strategy.py [--dataset PATH] [--folds 5]
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def family_of(record: dict) -> str:
    return record.get("family") or record["name"].rsplit("_", 1)[0]


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list:
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def family_folds(families: np.ndarray, folds: int, seed: int) -> list:
    """`folds` folds of whole families (each family is tested exactly once)."""
    names = sorted(set(families))
    order = np.random.default_rng(seed).permutation(len(names))
    groups = {names[j]: k % folds for k, j in enumerate(order)}
    fold_of = np.array([groups[f] for f in families])
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]


def validation_rows(
    train: np.ndarray,
    labels: np.ndarray,
    families: np.ndarray,
    by_family: bool,
    seed: int,
    fraction: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Splits training rows into fit and validation rows (whole families when `by_family`)."""
    rng = np.random.default_rng(seed)
    if by_family:
        names = sorted(set(families[train]))
        held = set(rng.permutation(names)[: max(1, round(len(names) * fraction))])
        mask = np.array([families[i] in held for i in train])
    else:
        mask = np.zeros(len(train), dtype=bool)
        for label in np.unique(labels[train]):
            members = np.flatnonzero(labels[train] == label)
            members = rng.permutation(members)[: int(round(len(members) * fraction))]
            mask[members] = True
    return train[~mask], train[mask]


def train_keras(
    config_path: str,
    raw: np.ndarray,
    labels: np.ndarray,
    times: np.ndarray,
    families: np.ndarray,
    fit_rows: np.ndarray,
    val_rows: np.ndarray,
    test_rows: np.ndarray,
    seed: int,
):
    from keras_trainer.jit.model.trainer import ModelTrainer, PreparedData, one_hot

    trainer = ModelTrainer(config_path)
    trainer.config.training.verbose = 0
    trainer.config.training.seed = seed
    trainer.fit_normalizer(raw[fit_rows])
    X = trainer.normalize(raw)
    y = one_hot(labels.tolist(), trainer.config.model.output_dim)
    data = PreparedData(X, y, times, families)
    trainer.create_model(X.shape[1])
    trainer.train(data.take(fit_rows), validation_data=data.take(val_rows))
    plain = trainer.predict_strategy_normalized(X[test_rows], fallback=False)
    with_fallback = trainer.predict_strategy_normalized(X[test_rows]) if trainer.fallback else None
    return plain, with_fallback, trainer


def scores(chosen: np.ndarray, times: np.ndarray, labels: np.ndarray) -> dict:
    picked = times[np.arange(len(times)), chosen]
    best = times.min(axis=1)
    return {
        "accuracy": float(np.mean(chosen == labels)),
        "regret": float(picked.sum() / best.sum()),
        "geomean": float(np.exp(np.mean(np.log(picked / best)))),
    }


def main(argv=None) -> int:
    from keras_trainer.jit import C_KERNELS_PATH
    from keras_trainer.jit.config import load_jit_config
    from keras_trainer.jit.data.collect import read_dataset
    from keras_trainer.jit.model.choices import labels_from_times, times_matrix
    from keras_trainer.jit.model.trainer import ModelTrainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=C_KERNELS_PATH)
    parser.add_argument("--seed-config", default=os.path.join(ROOT, "config", "model_config.json"))
    parser.add_argument(
        "--cost-config", default=os.path.join(ROOT, "config", "jit_cost_aware.json")
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cv", choices=["both", "stratified", "family"], default="both")
    args = parser.parse_args(argv)

    import keras
    from sklearn.ensemble import RandomForestClassifier

    start = time.time()
    data = read_dataset(args.dataset)
    samples = data["samples"]
    seed_config = load_jit_config(args.seed_config)
    names = seed_config.jit.names
    times = times_matrix([r["timings_ns"] for r in samples], names, "timings_ns")
    extractor = ModelTrainer(args.seed_config)
    labels = labels_from_times(
        times, names, seed_config.jit.tie_tolerance, extractor.tie_preference
    )
    families = np.array([family_of(r) for r in samples])
    raw = extractor.extract_features([r["ir"] for r in samples], [r["runtime"] for r in samples])
    counts = collections.Counter(names[k] for k in labels)
    print(
        f"dataset {os.path.relpath(args.dataset, ROOT)}: {len(samples)} kernels, "
        f"{len(set(families))} families, labels "
        + ", ".join(f"{n} {counts[n] / len(labels):.0%}" for n in names)
    )
    print(
        f"backend={keras.backend.backend()} cpu={os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}); tie tolerance "
        f"{seed_config.jit.tie_tolerance:.0%}, cheapest wins"
    )

    fixed = {
        f"always {name}": scores(np.full(len(labels), k), times, labels)
        for k, name in enumerate(names)
    }
    best_fixed = min(fixed, key=lambda k: fixed[k]["regret"])
    oracle = scores(np.argmin(times, axis=1), times, labels)

    plans = []
    if args.cv in ("both", "stratified"):
        plans.append(
            (
                "5-fold stratified",
                stratified_folds(labels, args.folds, args.seed),
                False,
            )
        )
    if args.cv in ("both", "family"):
        plans.append(
            (
                "5-fold leave-family-out",
                family_folds(families, args.folds, args.seed),
                True,
            )
        )
    results = {}
    for title, folds, by_family in plans:
        chosen = {
            key: np.zeros(len(labels), dtype=np.int64)
            for key in (
                "seed config (labels)",
                "cost-aware config",
                "cost-aware + fallback",
                "RandomForest (same features)",
                "majority class",
            )
        }
        thresholds = []
        for k, (train, test) in enumerate(folds):
            fit_rows, val_rows = validation_rows(train, labels, families, by_family, args.seed + k)
            plain, _, _ = train_keras(
                args.seed_config,
                raw,
                labels,
                times,
                families,
                fit_rows,
                val_rows,
                test,
                args.seed,
            )
            chosen["seed config (labels)"][test] = plain
            plain, fallback, trainer = train_keras(
                args.cost_config,
                raw,
                labels,
                times,
                families,
                fit_rows,
                val_rows,
                test,
                args.seed,
            )
            chosen["cost-aware config"][test] = plain
            chosen["cost-aware + fallback"][test] = fallback if fallback is not None else plain
            if trainer.fallback:
                thresholds.append(
                    f"{trainer.fallback['strategy']}@{trainer.fallback['threshold']:.2f}"
                )
            forest = RandomForestClassifier(n_estimators=300, random_state=args.seed, n_jobs=1)
            forest.fit(raw[train], labels[train])
            chosen["RandomForest (same features)"][test] = forest.predict(raw[test])
            chosen["majority class"][test] = np.bincount(
                labels[train], minlength=len(names)
            ).argmax()
        rows = {key: scores(value, times, labels) for key, value in chosen.items()}
        rows.update(fixed)
        rows["oracle (per-sample best)"] = oracle
        results[title] = rows
        print(
            f"\n{title} CV (out-of-fold choices for all {len(labels)} kernels); fallback per fold: "
            f"{', '.join(thresholds) or 'off'}"
        )
        print(f"  {'chooser':32s} {'accuracy':>9s} {'regret':>8s} {'geomean':>8s}")
        for key, row in rows.items():
            marker = "  <- best fixed" if key == best_fixed else ""
            print(
                f"  {key:32s} {row['accuracy']:9.3f} {row['regret']:8.4f} {row['geomean']:8.4f}{marker}"
            )
    print("\nMust-show checks:")
    checks = []
    if "5-fold stratified" in results:
        rows = results["5-fold stratified"]
        checks.append(
            (
                "stratified: seed config regret < best fixed",
                rows["seed config (labels)"]["regret"] < rows[best_fixed]["regret"],
            )
        )
        checks.append(
            (
                "stratified: cost-aware regret <= RandomForest",
                rows["cost-aware config"]["regret"]
                <= rows["RandomForest (same features)"]["regret"],
            )
        )
    if "5-fold leave-family-out" in results:
        rows = results["5-fold leave-family-out"]
        checks.append(
            (
                "leave-family-out: fallback regret <= best fixed",
                rows["cost-aware + fallback"]["regret"] <= rows[best_fixed]["regret"],
            )
        )
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    print(f"\n{time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
