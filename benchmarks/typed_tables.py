"""Typed tables in 5-fold CV: our default feed-forward against two scikit-learn baselines.

    KERAS_BACKEND=jax python benchmarks/typed_tables.py [--table penguins] [--folds 5] \
        [--seed 0] [--repeats 1]

`--table penguins` is `builtin:penguins` (344 rows; target species; island text,
sex text with blanks, four measurements with blanks, year); `--table cars` is
`builtin:cars` (406 rows; target Origin; the make-and-model Name as text with 311
values, six measurements with blanks, year). Every model sees the same stratified
folds (seeded) and the same column types (inferred from the training folds;
category and binary columns are categorical for scikit-learn too), and learns its
preprocessing on the training folds only:

* ours: `TablePreprocessor` with the inferred column types (median imputation,
  standardization, one-hot or, past 16 values, embedded categories, binary
  columns) and the default `feed_forward` network of `keras-trainer train`
  (hidden 64-32, ReLU, softmax; the training defaults: Adam, up to 100 epochs,
  early stopping on a validation fifth of the training folds, best weights restored);
* one-hot + logistic regression: `SimpleImputer` (median / most frequent),
  `StandardScaler`, `OneHotEncoder`, `LogisticRegression(max_iter=2000)`;
* `HistGradientBoostingClassifier` with native categorical columns (ordinal codes,
  at most 250 per column: rarer values share one).

Prints each model's mean accuracy (and per-fold spread) and ours minus the better
baseline in accuracy points (the target: no worse than -1).
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer.config import load_config  # noqa: E402
from keras_trainer.core.training.fit import fit  # noqa: E402
from keras_trainer.tabular.data import split_rows  # noqa: E402
from keras_trainer.tabular.datasets import FRAMES  # noqa: E402
from keras_trainer.tabular.preprocessing import TablePreprocessor  # noqa: E402
from keras_trainer.tabular.tables import encode_target, read_frame  # noqa: E402
from keras_trainer.tabular.typed_training import build_typed_model  # noqa: E402


def ours(frame, y, train, test, seed, target, epochs=None):
    """The `keras-trainer train` defaults on one fold: accuracy on the test fold.

    `epochs` caps the training (default: the config default, with early stopping).
    """
    training = {"seed": seed, "verbose": 0, **({"epochs": epochs} if epochs else {})}
    config = load_config(
        {
            "model": {"type": "feed_forward", "output_activation": "softmax", "output_dim": 3},
            "training": training,
        }
    )
    keras.utils.set_random_seed(seed)
    fit_rows, val_rows, _ = split_rows(len(train), config.training.validation_split or 0.2, 0, seed)
    pre = TablePreprocessor.fit(frame.iloc[train[fit_rows]].reset_index(drop=True), {}, target)
    x = pre.transform(frame)[0]
    model = build_typed_model(config.model, pre, x.shape[1])
    fit(
        model,
        x[train[fit_rows]],
        y[train[fit_rows]],
        config=config.training,
        loss="sparse_categorical_crossentropy",
        validation_data=(x[train[val_rows]], y[train[val_rows]]),
    )
    predicted = np.asarray(model.predict(x[test], verbose=0)).argmax(axis=1)
    return float(np.mean(predicted == y[test]))


def baselines(frame, y, train, test, target):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    fitted = TablePreprocessor.fit(frame.iloc[train].reset_index(drop=True), {}, target)
    kinds = {column["name"]: column["type"] for column in fitted.columns}
    numbers = [name for name, kind in kinds.items() if kind == "number"]
    categories = [name for name, kind in kinds.items() if kind in ("category", "binary")]
    features = frame[numbers + categories].astype({c: object for c in categories})
    features[categories] = features[categories].where(features[categories].notna(), np.nan)
    linear = make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
                (
                    "cat",
                    make_pipeline(
                        SimpleImputer(strategy="most_frequent"),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    categories,
                ),
            ]
        ),
        LogisticRegression(max_iter=2000),
    )
    boosted = make_pipeline(
        ColumnTransformer(
            [
                (
                    "cat",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=-1,
                        encoded_missing_value=-1,
                        max_categories=250,
                    ),
                    categories,
                ),
                ("num", "passthrough", numbers),
            ]
        ),
        HistGradientBoostingClassifier(
            categorical_features=list(range(len(categories))), random_state=0
        ),
    )
    scores = {}
    for name, model in (
        ("one-hot + logistic regression", linear),
        ("HistGradientBoosting", boosted),
    ):
        model.fit(features.iloc[train], y[train])
        scores[name] = float(np.mean(model.predict(features.iloc[test]) == y[test]))
    return scores


def main() -> None:
    from sklearn.model_selection import StratifiedKFold

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", choices=sorted(FRAMES), default="penguins")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=1, help="CV repeats with seeds seed, seed+1, ..."
    )
    args = parser.parse_args()
    target = FRAMES[args.table]
    frame = read_frame(f"builtin:{args.table}")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    y, classes = encode_target(frame[target], target)
    scores: dict[str, list[float]] = {}
    start = time.perf_counter()
    for repeat in range(args.repeats):
        seed = args.seed + repeat
        folds = StratifiedKFold(args.folds, shuffle=True, random_state=seed).split(frame, y)
        for fold, (train, test) in enumerate(folds):
            row = {
                "ours (feed_forward, defaults)": ours(frame, y, train, test, seed, target),
                **baselines(frame, y, train, test, target),
            }
            for name, value in row.items():
                scores.setdefault(name, []).append(value)
            print(
                f"seed {seed} fold {fold}: " + ", ".join(f"{n} {v:.4f}" for n, v in row.items()),
                flush=True,
            )
    print(
        f"\n{args.table}: {len(frame)} rows, classes {classes}, {args.folds}-fold CV x {args.repeats}, "
        f"backend {keras.backend.backend()}, {time.perf_counter() - start:.0f} s"
    )
    print("| model | mean accuracy | min fold | max fold |\n| --- | --- | --- | --- |")
    for name, values in scores.items():
        print(f"| {name} | {statistics.mean(values):.4f} | {min(values):.4f} | {max(values):.4f} |")
    ours_mean = statistics.mean(scores["ours (feed_forward, defaults)"])
    best = max(statistics.mean(v) for n, v in scores.items() if not n.startswith("ours"))
    print(
        f"\nours - better baseline: {100 * (ours_mean - best):+.2f} accuracy points (target >= -1)"
    )


if __name__ == "__main__":
    main()
