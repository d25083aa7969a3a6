"""keras_trainer.tabular: feed-forward, LSTM and CNN+LSTM networks for tables and time series.

The `model.type`s "feed_forward", "lstm" and "cnn_lstm" (`tabular.builders`) are
entries of `keras_trainer.registry.MODEL_TYPES`, so `ModelTrainer` builds them from
a JSON config without importing this package first.

Example:

>>> from keras_trainer.tabular import ArchitectureType, ModelConfig, ModelFactory
>>> model = ModelFactory().create_model(ModelConfig(
...     architecture_type=ArchitectureType.FEED_FORWARD, input_size=100,
...     hidden_sizes=[64, 32, 16], output_size=1, dropout_rate=0.2))
"""

from keras_trainer.tabular.comparison import (
    ArchitectureComparison,
    ArchitectureResult,
    compare_architectures,
    test_architecture,
)
from keras_trainer.tabular.config import ArchitectureType, ModelConfig, TabularModelConfig
from keras_trainer.tabular.datasets import load_csv, load_stock_prices, load_table, stock_features
from keras_trainer.tabular.factory import (
    KerasModelFactory,
    ModelFactory,
    default_loss,
    default_metrics,
)
from keras_trainer.tabular.normalization import (
    FeatureScaler,
    load_tabular_model,
    save_tabular_model,
    serving_model,
)
from keras_trainer.tabular.windows import make_windows, train_val_windows

__all__ = [
    "ArchitectureResult",
    "ArchitectureType",
    "ArchitectureComparison",
    "FeatureScaler",
    "KerasModelFactory",
    "ModelConfig",
    "ModelFactory",
    "TabularModelConfig",
    "compare_architectures",
    "default_loss",
    "default_metrics",
    "load_csv",
    "load_stock_prices",
    "load_table",
    "load_tabular_model",
    "make_windows",
    "save_tabular_model",
    "serving_model",
    "stock_features",
    "test_architecture",
    "train_val_windows",
]
