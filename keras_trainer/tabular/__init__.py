"""keras_trainer.tabular: feed-forward, LSTM and CNN+LSTM networks for tables and time series.

The `model.type`s "feed_forward", "lstm" and "cnn_lstm" (`tabular.builders`) are
entries of `keras_trainer.registry.MODEL_TYPES`, so `ModelTrainer` builds them from
a JSON config without importing this package first. Typed tables (text, blanks,
class names: `TablePreprocessor`, `TableModel`) are read as `docs/tables.md` shows.

Names are imported on first use, so `keras-trainer inspect` starts without Keras.

Example:

>>> from keras_trainer.tabular import ArchitectureType, ModelConfig, ModelFactory
>>> model = ModelFactory().create_model(ModelConfig(
...     architecture_type=ArchitectureType.FEED_FORWARD, input_size=100,
...     hidden_sizes=[64, 32, 16], output_size=1, dropout_rate=0.2))
"""

from keras_trainer.registry import lazy_exports

_EXPORTS = {
    "ArchitectureResult": "keras_trainer.tabular.comparison",
    "ArchitectureComparison": "keras_trainer.tabular.comparison",
    "compare_architectures": "keras_trainer.tabular.comparison",
    "test_architecture": "keras_trainer.tabular.comparison",
    "ArchitectureType": "keras_trainer.tabular.config",
    "ModelConfig": "keras_trainer.tabular.config",
    "TabularModelConfig": "keras_trainer.tabular.config",
    "load_csv": "keras_trainer.tabular.datasets",
    "load_frame": "keras_trainer.tabular.datasets",
    "load_stock_prices": "keras_trainer.tabular.datasets",
    "load_table": "keras_trainer.tabular.datasets",
    "stock_features": "keras_trainer.tabular.datasets",
    "KerasModelFactory": "keras_trainer.tabular.factory",
    "ModelFactory": "keras_trainer.tabular.factory",
    "PyTorchModelFactory": "keras_trainer.tabular.factory",
    "default_loss": "keras_trainer.tabular.factory",
    "default_metrics": "keras_trainer.tabular.factory",
    "CategoryEmbedding": "keras_trainer.tabular.layers",
    "FeatureScaler": "keras_trainer.tabular.normalization",
    "load_tabular_model": "keras_trainer.tabular.normalization",
    "save_tabular_model": "keras_trainer.tabular.normalization",
    "serving_model": "keras_trainer.tabular.normalization",
    "TablePreprocessor": "keras_trainer.tabular.preprocessing",
    "TransformReport": "keras_trainer.tabular.preprocessing",
    "embedding_size": "keras_trainer.tabular.preprocessing",
    "TableModel": "keras_trainer.tabular.table_model",
    "describe_table": "keras_trainer.tabular.tables",
    "infer_column_type": "keras_trainer.tabular.tables",
    "read_frame": "keras_trainer.tabular.tables",
    "prepare_typed_table": "keras_trainer.tabular.typed_training",
    "make_windows": "keras_trainer.tabular.windows",
    "train_val_windows": "keras_trainer.tabular.windows",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
