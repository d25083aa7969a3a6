import keras
import numpy as np
import pytest

from keras_trainer.config import ModelConfig as CoreModelConfig
from keras_trainer.core.building.models import model_types
from keras_trainer.core.training.memory import accelerator_usable
from keras_trainer.errors import ConfigError, ExportError
from keras_trainer.tabular import (
    ArchitectureType,
    KerasModelFactory,
    ModelConfig,
    ModelFactory,
    PyTorchModelFactory,
    TabularModelConfig,
)


def test_seed_names_are_exported():
    assert ModelConfig is TabularModelConfig
    assert KerasModelFactory is ModelFactory
    assert PyTorchModelFactory is ModelFactory  # the ML-framework document's name
    assert ArchitectureType.HYBRID is ArchitectureType.CNN_LSTM


def test_import_registers_model_types():
    assert {"feed_forward", "lstm", "cnn_lstm"} <= set(model_types())


def test_feed_forward_follows_config():
    config = ModelConfig(
        input_size=100,
        hidden_sizes=[64, 32, 16],
        output_size=1,
        dropout_rate=0.2,
        use_batch_norm=True,
        activation="gelu",
        weight_init="he",
    )
    model = ModelFactory(seed=0).create_model(config)
    assert model.input_shape == (None, 100) and model.output_shape == (None, 1)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [64, 32, 16, 1]
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 3
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 3
    assert type(dense[0].kernel_initializer).__name__ == "HeNormal"
    assert model.get_layer("output").activation.__name__ == "linear"


def test_lstm_bidirectional_with_classification_head():
    config = ModelConfig(
        architecture_type="lstm",
        input_size=4,
        sequence_length=12,
        hidden_sizes=[8],
        lstm_hidden_size=6,
        lstm_num_layers=2,
        lstm_bidirectional=True,
        task="classification",
        output_size=3,
        weight_init="orthogonal",
    )
    model = ModelFactory(seed=0).create_model(config)
    assert model.input_shape == (None, 12, 4) and model.output_shape == (None, 3)
    assert sum(isinstance(layer, keras.layers.Bidirectional) for layer in model.layers) == 2
    out = keras.ops.convert_to_numpy(model(np.zeros((2, 12, 4), "float32")))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_hybrid_has_conv_then_lstm():
    config = ModelConfig(
        architecture_type=ArchitectureType.HYBRID,
        input_size=3,
        sequence_length=10,
        hidden_sizes=[4],
        cnn_channels=[5, 6],
        cnn_kernel_sizes=[3, 2],
        lstm_hidden_size=4,
        lstm_num_layers=1,
        task="classification",
    )
    model = ModelFactory().create_model(config)
    names = [layer.name for layer in model.layers]
    assert names.index("conv_1") < names.index("lstm_0")
    assert (
        model.get_layer("conv_1").filters == 6
        and model.get_layer("output").activation.__name__ == "sigmoid"
    )


def test_model_trainer_builds_sequence_types_from_json_config():
    from keras_trainer.jit.model.trainer import ModelTrainer

    trainer = ModelTrainer(
        {
            "model": {
                "type": "cnn_lstm",
                "input_dim": 3,
                "sequence_length": 8,
                "output_dim": 1,
                "output_activation": "linear",
                "hidden_layers": [4],
                "cnn_channels": [4],
                "cnn_kernel_sizes": [3],
                "lstm_hidden_size": 4,
                "lstm_num_layers": 1,
            },
            "training": {"epochs": 1, "loss": "mse", "metrics": ["mae"], "verbose": 0},
        }
    )
    x = np.random.default_rng(0).normal(size=(32, 8, 3)).astype("float32")
    y = x[:, -1, :1]
    trainer.fit_normalizer(x)
    history = trainer.train((x, y), validation_data=(x, y))
    assert trainer.model.input_shape == (None, 8, 3)
    assert len(history.history["loss"]) == 1
    assert trainer.predict(x[:2]).shape == (2, 1)


def test_factory_and_json_config_build_the_same_network():
    from keras_trainer.core.building.models import build_model

    config = ModelConfig(
        architecture_type="lstm",
        input_size=2,
        sequence_length=5,
        hidden_sizes=[3],
        lstm_hidden_size=4,
        lstm_num_layers=1,
    )
    a = ModelFactory().create_model(config)
    b = build_model(CoreModelConfig.from_dict(config.to_model_config().to_dict()), (5, 2))
    assert a.count_params() == b.count_params()
    assert [type(layer).__name__ for layer in a.layers] == [
        type(layer).__name__ for layer in b.layers
    ]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"activation": "swishy"}, "activation"),
        ({"weight_init": "uniformish"}, "weight_init"),
        ({"task": "ranking"}, "task"),
        ({"architecture_type": "transformer"}, "architecture_type"),
        ({"cnn_channels": [4, 8], "cnn_kernel_sizes": [3]}, "model.cnn_kernel_sizes"),
        ({"hidden_sizes": [8, 0]}, "model.hidden_layers[1]"),
        ({"input_size": -3}, "input_size"),
    ],
)
def test_bad_options_raise_config_error_naming_them(changes, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ModelConfig(**{"input_size": 4, **changes})


def test_missing_input_size_is_reported():
    with pytest.raises(ConfigError, match="input_size"):
        ModelFactory().create_model(ModelConfig())


def test_lstm_on_flat_features_is_rejected():
    from keras_trainer.core.building.models import build_model

    with pytest.raises(ConfigError, match=r"\(steps, features\)"):
        build_model(CoreModelConfig(type="lstm", output_dim=1), (7,))


def test_factory_device_cuda_means_the_gpu_or_raises_a_config_error():
    if accelerator_usable()[0]:
        assert ModelFactory(device="cuda:0").device == "gpu"
    else:
        with pytest.raises(ConfigError, match="device='cuda': no accelerator is usable"):
            ModelFactory(device="cuda")
    with pytest.raises(ConfigError, match="unknown device 'npu'"):
        ModelFactory(device="npu")


def test_export_to_onnx_rejects_an_input_shape_the_model_does_not_take(tmp_path):
    # The export itself: the factory_feed_forward family of tests/export.
    factory = ModelFactory(seed=0, device="cpu")
    model = factory.create_model(ModelConfig(input_size=6, hidden_sizes=[4], use_batch_norm=False))
    with pytest.raises(ExportError, match=r"input_shape \(1, 5\) does not match"):
        factory.export_to_onnx(model, (1, 5), tmp_path / "bad.onnx")


def test_factory_builds_for_mixed_float16_and_fit_scales_the_loss(rng):
    from keras_trainer.config import TrainingConfig
    from keras_trainer.core.training.fit import fit

    config = TabularModelConfig(
        architecture_type="lstm",
        input_size=3,
        sequence_length=4,
        hidden_sizes=[4],
        lstm_hidden_size=4,
        output_size=3,
        task="classification",
    )
    model = ModelFactory(seed=0, mixed_precision="float16").create_model(config)
    x = rng.normal(size=(16, 4, 3)).astype("float32")
    y = rng.integers(0, 3, 16)
    training = {"epochs": 1, "batch_size": 8, "verbose": 0, "validation_split": 0.0}
    training.update(mixed_precision="float16", early_stopping_patience=0)
    history = fit(
        model,
        x,
        y,
        config=TrainingConfig.from_dict(training),
        loss="sparse_categorical_crossentropy",
    )
    assert model.get_layer("lstm_0").compute_dtype == "float16"
    assert model.output.dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(history.history["loss"]).all()
