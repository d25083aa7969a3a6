"""keras_trainer.serving: any saved model over HTTP (FastAPI + uvicorn, `[serve]` extra).

`ServedModel(path)` loads a `.keras`, `.h5` or `.onnx` network or an assistant
and answers JSON requests; `create_app(model)` is its FastAPI application;
`serve(path, host, port, config=ServingConfig(...))` runs it under limits
that are on by default; `DynamicBatcher` gathers concurrent requests into one
model call. `keras-trainer serve MODEL` is the command.
Names are imported on first use (`keras-trainer --help` stays free of Keras).

Example:

>>> from keras_trainer.serving import ServedModel
>>> ServedModel("models/jit_optimizer.keras").predict({"inputs": [[1.0] * 12]})
"""

from keras_trainer.registry import lazy_exports

_EXPORTS = {
    "DynamicBatcher": "keras_trainer.serving.batching",
    "ServedModel": "keras_trainer.serving.model",
    "ServingConfig": "keras_trainer.serving.config",
    "create_app": "keras_trainer.serving.app",
    "serve": "keras_trainer.serving.app",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
