"""keras_trainer: config-driven training, tuning, export and serving of Keras 3 models.

Public names are imported on first use, so `import keras_trainer` stays cheap (the
JIT data collector's worker processes import the package without Keras).

Example:

>>> from keras_trainer import ModelTrainer
>>> trainer = ModelTrainer("config/model_config.json")
"""

import importlib

from keras_trainer.compat import install_module_aliases
from keras_trainer.errors import (
    BackendNotSupportedError,
    CheckpointError,
    ColumnTypeError,
    ConfigError,
    DataError,
    ExportError,
    InferenceError,
    IRParseError,
    KerasTrainerError,
    LimitError,
    ModelError,
    ModelStoreError,
    QuantizationError,
    ServingError,
    TrainingError,
    TuningError,
    WorkerError,
)
from keras_trainer.version import __version__

# Modules moved into subpackages (core/training, jit/runtime, ...) keep their old paths.
install_module_aliases()

_EXPORTS = {
    # config
    "TrainerConfig": "keras_trainer.config",
    "ModelConfig": "keras_trainer.config",
    "TrainingConfig": "keras_trainer.config",
    "load_config": "keras_trainer.config",
    "json_schema": "keras_trainer.config",
    # core
    "fit": "keras_trainer.core.training.fit",
    "compile_model": "keras_trainer.core.training.fit",
    "fit_population": "keras_trainer.core.training.population",
    "fit_populations": "keras_trainer.core.training.population",
    "PopulationMember": "keras_trainer.core.training.population",
    "TrainingHistory": "keras_trainer.core.recording.history",
    "CheckpointManager": "keras_trainer.core.saving.checkpoints",
    "save_model": "keras_trainer.core.saving.persistence",
    "load_model": "keras_trainer.core.saving.persistence",
    "read_metadata": "keras_trainer.core.saving.persistence",
    "set_seed": "keras_trainer.core.training.seeding",
    "build_model": "keras_trainer.core.building.models",
    "get_loss": "keras_trainer.core.building.losses",
    "register_loss": "keras_trainer.core.building.losses",
    "available_losses": "keras_trainer.core.building.losses",
    "FocalLoss": "keras_trainer.core.building.losses",
    "WeightedMultiTaskLoss": "keras_trainer.core.building.losses",
    "ModelEvaluator": "keras_trainer.core.evaluating.evaluation",
    "EvaluationReport": "keras_trainer.core.evaluating.evaluation",
    "compare_models": "keras_trainer.core.evaluating.comparison",
    "ModelComparison": "keras_trainer.core.evaluating.comparison",
    "ComparisonTable": "keras_trainer.compat",
    "plot_training_curves": "keras_trainer.core.recording.plots",
    "plot_confusion_matrix": "keras_trainer.core.recording.plots",
    "register_model_builder": "keras_trainer.core.building.models",
    # functional training: explicit parameters, gradients, update steps (a module)
    "functional": "keras_trainer.functional",
    # training features: streams, cross-validation, memory, determinism
    "ShardDataset": "keras_trainer.core.inputs.streaming",
    "stream_statistics": "keras_trainer.core.inputs.streaming",
    "cross_validate": "keras_trainer.core.evaluating.cross_validation",
    "CrossValidationResult": "keras_trainer.core.evaluating.cross_validation",
    "OutOfMemoryError": "keras_trainer.core.training.memory",
    "enable_determinism": "keras_trainer.core.training.determinism",
    # export and serving
    "export_onnx": "keras_trainer.export",
    "export_onnx_many": "keras_trainer.export",
    "ExportRequest": "keras_trainer.export",
    "read_onnx_metadata": "keras_trainer.export",
    "CompiledInferenceLayer": "keras_trainer.export",
    "InferenceBackend": "keras_trainer.export",
    "InferenceResult": "keras_trainer.export",
    # deployment (issue 18): quantization, torch serving, ensembles, model store
    "quantize_onnx": "keras_trainer.export",
    "quantization_report": "keras_trainer.export",
    "QuantizationReport": "keras_trainer.export",
    "export_torch": "keras_trainer.export",
    "load_torch_program": "keras_trainer.export",
    "build_ensemble": "keras_trainer.core.evaluating.ensemble",
    "save_ensemble": "keras_trainer.core.evaluating.ensemble",
    "EnsembleAverage": "keras_trainer.core.evaluating.ensemble",
    "ModelStore": "keras_trainer.export.store",
    "resolve_model_path": "keras_trainer.export.store",
    # tabular family and tuning
    "ModelFactory": "keras_trainer.tabular",
    "PyTorchModelFactory": "keras_trainer.tabular",
    "TabularModelConfig": "keras_trainer.tabular",
    "ArchitectureType": "keras_trainer.tabular",
    "test_architecture": "keras_trainer.tabular",
    "compare_architectures": "keras_trainer.tabular",
    "make_windows": "keras_trainer.tabular",
    "train_val_windows": "keras_trainer.tabular",
    "AutoTrainer": "keras_trainer.tuning",
    "AutoTrainerConfig": "keras_trainer.tuning",
    "HyperparameterSpace": "keras_trainer.tuning",
    "OptimizerType": "keras_trainer.tuning",
    "TuningResult": "keras_trainer.tuning",
    "sharpe_ratio": "keras_trainer.tuning",
    "sortino_ratio": "keras_trainer.tuning",
    # assistant family
    "AssistantConfig": "keras_trainer.assistant",
    "Assistant": "keras_trainer.assistant",
    "train_assistant": "keras_trainer.assistant",
    "load_assistant": "keras_trainer.assistant",
    "generate_response": "keras_trainer.assistant",
    "generate_batch": "keras_trainer.assistant",
    "export_assistant_onnx": "keras_trainer.assistant",
    "OnnxAssistant": "keras_trainer.assistant",
    "evaluate_assistant": "keras_trainer.assistant",
    # JIT family
    "ModelTrainer": "keras_trainer.jit.model.trainer",
    "JITConfig": "keras_trainer.jit.config",
    "FeatureConfig": "keras_trainer.jit.config",
    "load_jit_config": "keras_trainer.jit.config",
    "FeatureExtractor": "keras_trainer.jit",
    "AdaptiveJIT": "keras_trainer.jit",
    "collect_dataset": "keras_trainer.jit",
    "load_dataset": "keras_trainer.jit",
    "generate_corpus": "keras_trainer.jit",
    "STRATEGIES": "keras_trainer.jit",
    "STRATEGY_NAMES": "keras_trainer.jit",
}

__all__ = sorted(_EXPORTS) + [
    "BackendNotSupportedError",
    "CheckpointError",
    "ColumnTypeError",
    "ConfigError",
    "DataError",
    "ExportError",
    "InferenceError",
    "IRParseError",
    "KerasTrainerError",
    "LimitError",
    "ModelError",
    "ModelStoreError",
    "QuantizationError",
    "ServingError",
    "TrainingError",
    "TuningError",
    "WorkerError",
    "__version__",
]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_trainer' has no attribute {name!r}")
    value = importlib.import_module(module)
    if module != f"keras_trainer.{name}":  # a name in a module, not a module
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
