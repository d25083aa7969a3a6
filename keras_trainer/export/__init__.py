"""keras_trainer.export: ONNX export from any backend and compiled inference.

- `export_onnx` / `export_onnx_many`: Keras model or `.keras` file -> `.onnx`
  with a dynamic batch dimension and the model's metadata.
- `quantize_onnx` (also `export_onnx(..., quantize="dynamic" | "static")`) and
  `quantization_report`: int8 models through ONNX Runtime and what they cost
  in accuracy and gain in size and latency.
- `export_torch` / `load_torch_program`: a `torch.export` program (`.pt2`)
  of a model, served by `CompiledInferenceLayer(InferenceBackend.TORCH)`.
- `read_onnx_metadata`: the metadata stored in an exported file.
- `CompiledInferenceLayer`: ONNX Runtime or compiled-Keras serving with input
  checks and latency statistics.
"""

from keras_trainer.registry import lazy_exports

# Names are imported on first use: `keras-trainer --help` imports this package's
# `cli` module, which must not pull in Keras, ONNX or ONNX Runtime.
_EXPORTS = {
    "CompiledInferenceLayer": "keras_trainer.export.inference",
    "InferenceBackend": "keras_trainer.export.inference",
    "InferenceResult": "keras_trainer.export.inference",
    "LatencyRecorder": "keras_trainer.export.latency",
    "read_onnx_metadata": "keras_trainer.export.metadata",
    "DEFAULT_OPSET": "keras_trainer.export.onnx_export",
    "ExportRequest": "keras_trainer.export.onnx_export",
    "export_onnx": "keras_trainer.export.onnx_export",
    "export_onnx_many": "keras_trainer.export.onnx_export",
    "QUANTIZATION_MODES": "keras_trainer.export.quantization",
    "QuantizationReport": "keras_trainer.export.quantization_quality",
    "quantizable_op_types": "keras_trainer.export.quantization",
    "quantization_report": "keras_trainer.export.quantization_quality",
    "quantize_onnx": "keras_trainer.export.quantization",
    "TorchProgram": "keras_trainer.export.torch_inference",
    "export_torch": "keras_trainer.export.torch_inference",
    "export_torch_many": "keras_trainer.export.torch_inference",
    "load_torch_program": "keras_trainer.export.torch_inference",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
