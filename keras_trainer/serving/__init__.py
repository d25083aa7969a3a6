"""keras_trainer.serving: any saved model over HTTP (FastAPI + uvicorn, `[serve]` extra).

`ServedModel(path)` loads a `.keras`, `.h5` or `.onnx` network or an assistant
and answers JSON requests; `create_app(model)` is its FastAPI application;
`serve(path, host, port)` runs it. `keras-trainer serve MODEL` is the command.

Example:

>>> from keras_trainer.serving import ServedModel
>>> ServedModel("models/jit_optimizer.keras").predict({"inputs": [[1.0] * 12]})
"""

from keras_trainer.serving.app import create_app, serve
from keras_trainer.serving.model import ServedModel

__all__ = ["ServedModel", "create_app", "serve"]
