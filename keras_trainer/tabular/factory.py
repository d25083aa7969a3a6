"""`ModelFactory`: builds the tabular and time-series networks from a `TabularModelConfig`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import keras

from keras_trainer.core.building.models import build_model
from keras_trainer.core.training import precision
from keras_trainer.core.training.memory import accelerator_usable, device_scope
from keras_trainer.core.training.seeding import set_seed
from keras_trainer.errors import ConfigError, ExportError
from keras_trainer.tabular.config import TabularModelConfig
from keras_trainer.tabular.normalization import FeatureScaler, serving_model


def default_loss(config: TabularModelConfig, y: Any = None) -> str:
    """The loss that fits the config's head (and, for softmax, the label format).

    regression -> "mse"; one sigmoid output -> "binary_crossentropy"; softmax ->
    "sparse_categorical_crossentropy" for integer labels `(n,)`, else
    "categorical_crossentropy".
    """
    if config.task == "regression":
        return "mse"
    if config.output_size == 1:
        return "binary_crossentropy"
    if y is not None and getattr(y, "ndim", 1) == 2 and y.shape[-1] == config.output_size:
        return "categorical_crossentropy"
    return "sparse_categorical_crossentropy"


def default_metrics(config: TabularModelConfig) -> list[str]:
    """ "accuracy" for classification, "mae" for regression."""
    return ["accuracy"] if config.task == "classification" else ["mae"]


# Device names as the ML-framework document writes them (PyTorch's), mapped to ours.
_DEVICES = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "auto": "auto"}


def _device(device: Optional[str]) -> Optional[str]:
    if device is None:
        return None
    name = str(device).lower().split(":")[0]
    if name not in _DEVICES:
        raise ConfigError(
            f"device: unknown device {device!r}; pass 'cpu', 'gpu' (or 'cuda'), 'auto' or None"
        )
    if _DEVICES[name] == "gpu":
        usable, reason = accelerator_usable()
        if not usable:
            raise ConfigError(
                f"device={device!r}: no accelerator is usable ({reason}); pass device='cpu' "
                "or device='auto' (the CPU when there is none)"
            )
    return _DEVICES[name]


class ModelFactory:
    """Builds feed-forward, LSTM and CNN+LSTM Keras models (the factory API of the original PyTorch project).

    Args:
        seed: Seeds weight initialization for reproducible models; `None` leaves
            the RNGs as they are.
        device: Where the models' weights live: `"cpu"`, `"gpu"` (or PyTorch's
            `"cuda"`, `"cuda:0"`), `"auto"` (an accelerator when one is usable), or
            `None` (Keras' choice, the default). Models are built under Keras'
            device scope; train them under the same `training.device`.
        mixed_precision: "off", "float16" or "bfloat16": the compute dtype of the
            models it builds (as `training.mixed_precision`, which `fit` then needs
            to match). Defaults to the dtype policy in force when a model is built
            (`keras_trainer.core.training.precision.policy_scope`, else float32).

    Raises:
        ConfigError: an unknown device name, or `"gpu"`/`"cuda"` where no
            accelerator is usable.

    Example:

    >>> factory = ModelFactory(seed=0, device="cpu")
    >>> model = factory.create_model(TabularModelConfig(input_size=30, hidden_sizes=[16]))
    >>> model.output_shape
    (None, 1)
    """

    def __init__(
        self,
        seed: Optional[int] = None,
        device: Optional[str] = None,
        mixed_precision: Optional[str] = None,
    ):
        self.seed = seed
        self.device = _device(device)
        self.mixed_precision = None
        if mixed_precision is not None:
            self.mixed_precision = precision.policy_name(mixed_precision)  # checks it

    def create_model(
        self, config: TabularModelConfig, scaler: Optional[FeatureScaler] = None
    ) -> keras.Model:
        """Builds the (uncompiled) network `config` describes.

        Args:
            config: The architecture.
            scaler: If given, the model starts with a `Normalization` layer
                holding its statistics, so it takes raw features.

        Raises:
            ConfigError: bad options (naming them) or a missing `input_size`.
        """
        if self.seed is not None:
            set_seed(self.seed)
        with device_scope(self.device):
            network = build_model(
                config.to_model_config(), config.input_shape, self.mixed_precision
            )
            if scaler is not None:
                return serving_model(network, scaler, name=f"{config.display_name}_model")
        return network

    def export_to_onnx(
        self, model: keras.Model, input_shape: Sequence[Optional[int]], output_path: Any
    ) -> str:
        """Writes `model` to an ONNX file with a dynamic batch dimension.

        Args:
            model: A model from `create_model` (trained or not).
            input_shape: The shape of one input batch, `(batch_size, input_size)` or
                `(batch_size, steps, features)`; the batch size is left dynamic.
            output_path: The `.onnx` file to write.

        Returns:
            The path written. See `keras_trainer.export.export_onnx` for the metadata
            stored with it; `onnx_request` gives the same export for
            `export_onnx_many` (several models in one conversion process).

        Raises:
            ExportError: `input_shape` does not match the model's input, or the
                conversion fails.
        """
        from keras_trainer.export import export_onnx_many

        return export_onnx_many([self.onnx_request(model, input_shape, output_path)])[0]

    def onnx_request(
        self, model: keras.Model, input_shape: Sequence[Optional[int]], output_path: Any
    ):
        """The `keras_trainer.export.ExportRequest` that `export_to_onnx` runs.

        Raises:
            ExportError: `input_shape` does not match the model's input.
        """
        from keras_trainer.export import ExportRequest

        expected = tuple(model.input_shape[1:])
        given = tuple(input_shape[1:])
        if len(given) != len(expected) or any(
            e is not None and g != e for g, e in zip(given, expected)
        ):
            raise ExportError(
                f"input_shape {tuple(input_shape)} does not match the model's input "
                f"(batch, {', '.join(str(e) for e in expected)})"
            )
        return ExportRequest(model, output_path, input_signature=[((None, *given), "float32")])


KerasModelFactory = ModelFactory
#: The ML-framework document's name for the factory.
PyTorchModelFactory = ModelFactory
