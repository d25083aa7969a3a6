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

from keras_trainer.export.inference import (
    CompiledInferenceLayer,
    InferenceBackend,
    InferenceResult,
)
from keras_trainer.export.latency import LatencyRecorder
from keras_trainer.export.metadata import read_onnx_metadata
from keras_trainer.export.onnx_export import (
    DEFAULT_OPSET,
    ExportRequest,
    export_onnx,
    export_onnx_many,
)
from keras_trainer.export.quantization import (
    QUANTIZATION_MODES,
    QuantizationReport,
    quantizable_op_types,
    quantization_report,
    quantize_onnx,
)
from keras_trainer.export.torch_inference import (
    TorchProgram,
    export_torch,
    export_torch_many,
    load_torch_program,
)
