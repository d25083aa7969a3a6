"""Training data of a typed table: rows split, preprocessing fitted on the training rows only.

`is_typed_table` says whether a source goes this way (declared `data.columns`,
a bundled typed table, or a CSV/Parquet file with text or blank cells; all-number
files keep the plain numeric path). `prepare_typed_table` reads it, drops rows
without a target, splits the rows, fits a `TablePreprocessor` on the training
part and encodes all three parts; `build_typed_model` puts a `CategoryEmbedding`
in front of the network when a column is embedded.

Example:

>>> table = prepare_typed_table("builtin:penguins", None, config)
>>> table.class_names
['Adelie', 'Chinstrap', 'Gentoo']
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from keras_trainer.errors import ConfigError, DataError
from keras_trainer.tabular.data import (
    CLASSIFICATION_ACTIVATIONS,
    head_targets,
    load_data,
    split_rows,
)
from keras_trainer.tabular.datasets import FRAMES
from keras_trainer.tabular.preprocessing import TablePreprocessor, column_numbers
from keras_trainer.tabular.tables import drop_missing_targets, encode_target, read_frame


def is_typed_table(source: Optional[str], config: Any = None) -> bool:
    """Whether `source` is read as a typed table (see the module docstring)."""
    if not source:
        return False
    if config is not None and config.data.columns:
        return True
    if source.startswith("builtin:"):
        return source[len("builtin:") :] in FRAMES
    if not source.lower().endswith((".csv", ".parquet", ".pq")):
        return False
    try:
        frame = read_frame(source)
    except DataError:
        return False  # the numeric reader names the problem
    for name in frame.columns:
        try:
            if np.isnan(column_numbers(frame[name], name)).any():
                return True
        except DataError:
            return True
    return False


def target_column(frame: Any, source: str, target: Optional[str], config: Any) -> str:
    """The target: `--target`, else `data.target_columns[0]` when named, else the
    bundled table's target, else the last column."""
    if target:
        return target
    named = [t for t in config.data.target_columns if t != "-1"]
    if named:
        return named[0]
    if source.startswith("builtin:"):
        return FRAMES[source[len("builtin:") :]]
    return str(frame.columns[-1])


@dataclasses.dataclass
class TypedTable:
    """Encoded training, validation and test parts of a typed table."""

    preprocessor: TablePreprocessor
    target: str
    class_names: Optional[list[str]]
    parts: dict  # "train" / "validation" / "test" -> (x float32, y)
    classification: bool
    fingerprint: str = ""  # of the rows with a target (`frame_fingerprint`)
    test_rows: Any = ()  # their indices in the test part

    @property
    def width(self) -> int:
        return int(self.parts["train"][0].shape[1])


def prepare_typed_table(
    source: str, target: Optional[str], config: Any, seed: Optional[int] = None
) -> TypedTable:
    """Reads, splits (seeded) and encodes a typed table; sets a null `model.output_dim`.

    Raises:
        DataError: unreadable table, no target column, text targets for a linear head.
        ColumnTypeError: a declared type that the values do not fit.
    """
    frame = read_frame(source)
    target = target_column(frame, source, target, config)
    frame = drop_missing_targets(frame, target, source)
    y, class_names = encode_target(frame[target], target)
    model_config = config.model
    if class_names is not None and model_config.output_activation not in CLASSIFICATION_ACTIVATIONS:
        raise DataError(
            f"{source}: target {target!r} holds class names ({', '.join(class_names[:4])}); set "
            "model.output_activation to 'softmax' (or 'sigmoid' for two classes)"
        )
    y, classification = head_targets(y, model_config, source)
    if classification and class_names is None:
        width = 2 if model_config.output_activation == "sigmoid" else model_config.output_dim
        class_names = [str(i) for i in range(width)]
    seed = (config.training.seed or 0) if seed is None else seed
    indices = _split(config, len(frame), y if classification else None, seed)
    train_rows = frame.iloc[indices[0]].reset_index(drop=True)
    preprocessor = TablePreprocessor.fit(train_rows, config.data.columns, target)
    x, _ = preprocessor.transform(frame)
    parts = {
        name: (x[index], y[index]) for name, index in zip(("train", "validation", "test"), indices)
    }
    return TypedTable(
        preprocessor,
        target,
        class_names,
        parts,
        classification,
        fingerprint=frame_fingerprint(frame),
        test_rows=indices[2],
    )


def frame_fingerprint(frame: Any) -> str:
    """The fingerprint of a table's rows (`keras_trainer.core.evaluating.held_out`)."""
    import pandas as pd

    from keras_trainer.core.evaluating.held_out import data_fingerprint

    return data_fingerprint(
        np.asarray([str(c) for c in frame.columns]),
        pd.util.hash_pandas_object(frame, index=False).to_numpy(),
    )


def build_typed_model(model_config: Any, preprocessor: TablePreprocessor, width: int):
    """The network for `width` encoded features, behind a `CategoryEmbedding` when needed."""
    from keras_trainer.core.building.models import build_model
    from keras_trainer.tabular.layers import with_embeddings

    return with_embeddings(
        lambda inner: build_model(model_config.replace(input_dim=inner), (inner,)),
        preprocessor.embedding_blocks(),
        width,
    )


def typed_metadata(table: TypedTable) -> dict:
    """Model metadata entries of a typed table: preprocessing state, raw columns, target."""
    return {
        "preprocessing": table.preprocessor.get_config(),
        "feature_names": table.preprocessor.input_columns,
        "encoded_features": table.preprocessor.feature_names,
        "class_names": table.class_names,
        "target": table.target,
    }


def table_splits(source: str, target: Optional[str], config: Any, seed: int):
    """Any table (typed or numeric) as `(x, y, feature_names, classification, (train,
    validation, test) row indices, metadata)` for code that splits arrays itself (`tune`).

    A typed table's preprocessing is fitted on its training rows and returned in
    `metadata` (the entries a saved model needs to read raw rows); a numeric table
    is read as `load_data` reads it. `metadata["split"]` records the test rows
    (`keras_trainer.core.evaluating.held_out`), so `evaluate` scores them by default.

    Raises:
        ConfigError: `model.input_dim` does not match the table's features.
    """
    from keras_trainer.core.evaluating.held_out import data_fingerprint, split_record

    if is_typed_table(source, config):
        table = prepare_typed_table(source, target, config, seed)
        parts = [table.parts[k] for k in ("train", "validation", "test")]
        sizes = np.cumsum([0] + [len(p[1]) for p in parts])
        indices = tuple(np.arange(sizes[i], sizes[i + 1]) for i in range(3))
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        names = table.preprocessor.input_columns
        split = split_record(
            source, table.fingerprint, seed, config.data.test_split, table.test_rows
        )
        return x, y, names, table.classification, indices, {**typed_metadata(table), "split": split}
    x, y, names = load_data(source, target)
    fingerprint = data_fingerprint(x, y)
    model_config = config.model
    if model_config.input_dim is not None and model_config.input_dim != x.shape[1]:
        raise ConfigError(
            f"model.input_dim: is {model_config.input_dim} but {source} has {x.shape[1]} features"
        )
    y, classification = head_targets(y, model_config, source)
    indices = _split(config, len(x), y if classification else None, seed)
    split = split_record(source, fingerprint, seed, config.data.test_split, indices[2])
    return x, y, names, classification, indices, {"split": split}


def _split(config, rows: int, labels, seed: int) -> tuple:
    """Training, validation and test row indices: shuffled and stratified by `labels`
    (None for regression) unless `data.time_series`; validation defaults to 0.2."""
    return split_rows(
        rows,
        config.training.validation_split or 0.2,
        config.data.test_split,
        seed,
        labels=labels,
        shuffle=not config.data.time_series,
    )
