import numpy as np
import pytest

from keras_trainer.core.evaluating.cross_validation import (
    CrossValidationResult,
    cross_validate,
    fold_indices,
)
from keras_trainer.errors import ConfigError, DataError


def _config(tmp_path=None):
    training = {
        "epochs": 2,
        "verbose": 0,
        "batch_size": 16,
        "early_stopping_patience": 0,
    }
    if tmp_path is not None:
        training["checkpoint"] = {"directory": str(tmp_path)}
    return {
        "model": {"input_dim": 6, "hidden_layers": [8], "output_dim": 3},
        "training": training,
    }


def test_every_sample_is_validated_exactly_once():
    pairs = fold_indices(23, 4, seed=1)
    validated = np.concatenate([val for _, val in pairs])
    assert sorted(validated) == list(range(23))
    for train, val in pairs:
        assert not set(train) & set(val) and len(train) + len(val) == 23


def test_stratified_folds_keep_class_proportions():
    labels = np.array([0] * 30 + [1] * 10)
    for _, val in fold_indices(40, 5, labels=labels):
        assert (labels[val] == 1).sum() == 2 and (labels[val] == 0).sum() == 6


def test_groups_never_straddle_a_split():
    groups = np.repeat(np.arange(8), 5)
    for train, val in fold_indices(40, 4, groups=groups):
        assert not set(groups[train]) & set(groups[val])


def test_contiguous_folds_without_shuffle():
    assert [list(val) for _, val in fold_indices(6, 3, shuffle=False)] == [
        [0, 1],
        [2, 3],
        [4, 5],
    ]


def test_bad_fold_requests_are_named():
    with pytest.raises(ConfigError, match="at least 2 folds"):
        fold_indices(10, 1)
    with pytest.raises(DataError, match="3 distinct groups cannot fill 4 folds"):
        fold_indices(9, 4, groups=[0, 0, 0, 1, 1, 1, 2, 2, 2])
    with pytest.raises(ConfigError, match="not both"):
        fold_indices(4, 2, labels=[0, 1, 0, 1], groups=[0, 0, 1, 1])


def test_cross_validate_reports_each_fold_and_the_mean(rng, tmp_path):
    x = rng.normal(size=(60, 6)).astype("float32") * 4 + 3
    y = (x[:, 0] > 3).astype(int) + (x[:, 1] > 3).astype(int)
    result = cross_validate(_config(tmp_path), x, y, folds=3)
    assert isinstance(result, CrossValidationResult) and len(result.folds) == 3
    for name in ("val_loss", "val_accuracy", "epochs"):
        assert result.mean[name] == pytest.approx(np.mean([fold[name] for fold in result.folds]))
    assert result.mean["epochs"] == 2
    assert (tmp_path / "fold-2").is_dir()  # each fold checkpoints in its own folder
    assert "val_loss" in result.summary()
