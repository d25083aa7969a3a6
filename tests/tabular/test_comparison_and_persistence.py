import numpy as np
import pytest

from keras_trainer.core.saving import persistence
from keras_trainer.errors import CheckpointError, DataError
from keras_trainer.tabular import (
    ArchitectureType,
    FeatureScaler,
    ModelConfig,
    ModelFactory,
    compare_architectures,
    load_tabular_model,
    save_tabular_model,
    stock_features,
    train_val_windows,
)


@pytest.fixture(scope="module")
def windows():
    features, returns, _ = stock_features()
    (xt, yt), (xv, yv) = train_val_windows(
        features[:400], window=8, targets=returns[:400] * 100, val_fraction=0.25
    )
    # Whole batches of 64 only (the last 256 training and first 64 validation windows):
    # JAX compiles one step per batch shape.
    (xt, yt), (xv, yv) = (xt[-256:], yt[-256:]), (xv[:64], yv[:64])
    scaler = FeatureScaler().fit(xt)
    return scaler, (scaler.transform(xt), yt), (scaler.transform(xv), yv)


def test_compare_architectures_tabulates_all_three_families(windows):
    _, train, val = windows
    small = dict(
        hidden_sizes=[4],
        lstm_hidden_size=4,
        lstm_num_layers=1,
        cnn_channels=[4],
        cnn_kernel_sizes=[3],
    )
    table = compare_architectures(
        {
            "ff": ModelConfig(**small),
            "lstm": ModelConfig(architecture_type="lstm", **small),
            "hybrid": ModelConfig(architecture_type=ArchitectureType.HYBRID, **small),
        },
        train,
        val,
        epochs=1,
        batch_size=64,
    )
    rows = table.rows()
    assert [row["name"] for row in rows] == ["ff", "lstm", "hybrid"]
    for row, result in zip(rows, table):
        assert np.isfinite(row["val_mae"]) and row["parameters"] == result.model.count_params() > 0
        assert row["training_time_s"] > 0 and row["latency_ms"] > 0
    assert "| ff | feed_forward |" in table.to_markdown()
    assert table.best() in list(table)


def test_compare_rejects_mismatched_lengths(windows):
    _, (x, y), val = windows
    with pytest.raises(DataError, match="X has .* samples but y has 3"):
        compare_architectures([ModelConfig()], (x, y[:3]), val, epochs=1)


def test_saved_model_takes_raw_features_and_carries_stats(tmp_path, windows):
    scaler, (x, _), _ = windows
    network = ModelFactory(seed=1).create_model(
        ModelConfig(
            architecture_type="lstm",
            input_size=4,
            sequence_length=8,
            hidden_sizes=[3],
            lstm_hidden_size=3,
            lstm_num_layers=1,
        )
    )
    raw = x[:5] * np.sqrt(scaler.variance) + scaler.mean
    expected = network.predict_on_batch(x[:5])
    path = save_tabular_model(network, tmp_path / "m.keras", scaler, {"architecture": "lstm"})
    model, metadata = load_tabular_model(path)
    np.testing.assert_allclose(model.predict_on_batch(raw), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(metadata["normalization"]["mean"], scaler.mean, rtol=1e-6)
    assert (
        metadata["architecture"] == "lstm" and persistence.read_metadata(path)["task"] == "tabular"
    )


def test_loading_a_non_tabular_file_is_rejected(tmp_path):
    network = ModelFactory().create_model(ModelConfig(input_size=2, hidden_sizes=[2]))
    persistence.save_model(network, tmp_path / "plain.keras", {"task": "other"})
    with pytest.raises(CheckpointError, match="not a tabular model"):
        load_tabular_model(tmp_path / "plain.keras")


def test_scaler_rejects_wrong_width():
    scaler = FeatureScaler().fit(np.ones((4, 3)))
    with pytest.raises(DataError, match="has 2 features per sample but the scaler was fitted on 3"):
        scaler.transform(np.ones((4, 2)))
