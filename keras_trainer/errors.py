"""The exception hierarchy of keras_trainer.

Every error the library raises on purpose derives from `KerasTrainerError`, so
callers can catch the library's errors in one place, and each kind of mistake has
one type: a bad configuration is a `ConfigError`, bad arrays or records are a
`DataError`, IR that does not parse is an `IRParseError`, and so on. Each also
derives from the built-in exception that fits it best (`ValueError`, `OSError`),
so code written against the built-ins keeps working.
"""


class KerasTrainerError(Exception):
    """Base class of every error raised by keras_trainer."""


class ConfigError(KerasTrainerError, ValueError):
    """A configuration is malformed, has an unknown key, or a bad value.

    The message names the key path (e.g. `model.hidden_layers[1]`) and the value.
    """


class DataError(KerasTrainerError, ValueError):
    """Input data has the wrong shape, dtype, length or content."""


class LimitError(DataError):
    """A request or input is larger than a configured limit (body bytes, rows,
    queries, query length, generation length, beam width); the message names the
    limit, its option and the size sent."""


class ColumnTypeError(DataError):
    """A table column holds values of another type than the model was trained on
    (text in a number column, a third value in a binary column); the message names
    the column, the row and the value."""


class IRParseError(DataError):
    """LLVM IR text does not parse or does not verify.

    Attributes:
        line: 1-based line number of the problem in the IR text, or `None`.
    """

    def __init__(self, message: str, line: "int | None" = None):
        super().__init__(message)
        self.line = line


class ModelError(KerasTrainerError, RuntimeError):
    """A model is missing, not built, or does not fit the request."""


class CheckpointError(KerasTrainerError, OSError):
    """A model or checkpoint file is missing, corrupt, or does not match."""


class TrainingError(KerasTrainerError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


class ExportError(KerasTrainerError, RuntimeError):
    """A model cannot be exported to the requested format."""


class QuantizationError(ExportError):
    """An exported model cannot be quantized as asked (e.g. an operator that
    ONNX Runtime cannot quantize; the message names it)."""


class ModelStoreError(KerasTrainerError, LookupError):
    """A model store has no such version or alias, or a version is damaged."""


class InferenceError(KerasTrainerError, RuntimeError):
    """A compiled inference backend cannot load or run a model."""


class TuningError(KerasTrainerError, RuntimeError):
    """A hyperparameter search is misconfigured or cannot run."""


class ServingError(KerasTrainerError, OSError):
    """The HTTP server cannot start (its port is in use or cannot be bound) or a
    request ran past a server timeout."""


class BackendNotSupportedError(KerasTrainerError, RuntimeError):
    """The active Keras backend (or device) cannot do what was asked."""


class WorkerError(KerasTrainerError, RuntimeError):
    """A worker subprocess running untrusted code (JIT-compiled IR) crashed, died,
    or ran past its time limit; it was killed and the caller's process is unharmed."""
