"""Subprocess worker that converts saved Keras models to ONNX with TensorFlow.

Run by `keras_trainer.export.onnx_export` as
`python -m keras_trainer.export._tf_worker JOB.json RESULT.json` with
`KERAS_BACKEND=tensorflow`. Whatever backend trained a model, its `.keras` file
loads under TensorFlow, and `tf2onnx.convert.from_function` converts a
`tf.function` of it reliably (bidirectional LSTMs included), which Keras' own
JAX and torch exporters do not. Running in a subprocess keeps TensorFlow out of
the caller's process (it costs seconds and memory under JAX or torch).

The job file holds `{"opset": int, "requests": [{"source", "output",
"input_signature", "metadata", "custom_modules"}]}`; the result file holds one
`{"output", "error", "input_names", "output_names"}` entry per request, so one
bad model does not lose the others.
"""

import json
import os
import sys
import traceback


def _atomic_write_bytes(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _output_names(model, count):
    structure = model.output
    if isinstance(structure, dict):
        names = sorted(structure)
    else:
        names = list(getattr(model, "output_names", None) or [])
    if len(names) != count or len(set(names)) != count:
        names = [f"output_{i}" for i in range(count)]
    return names


def _normalization_stats(model):
    """Mean and variance of a `Normalization` layer right after the input."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Normalization) and layer.built:
            mean = keras.ops.convert_to_numpy(layer.mean).reshape(-1)
            variance = keras.ops.convert_to_numpy(layer.variance).reshape(-1)
            return {"mean": mean.tolist(), "variance": variance.tolist()}
        return None
    return None


def _convert_one(request, opset):
    import keras
    import numpy as np
    import onnx
    import tensorflow as tf
    import tf2onnx
    from onnx import numpy_helper

    from keras_trainer.core.saving.persistence import load_model, registered_objects_of

    # Modules the caller named explicitly (never ones the file names); their
    # registered classes are allowed besides keras_trainer's own.
    allowed = registered_objects_of(request.get("custom_modules") or ())
    model, _ = load_model(request["source"], custom_objects=allowed)

    signature, input_structure = _signature(model, request.get("input_signature"))
    specs = [tf.TensorSpec(s["shape"], tf.as_dtype(s["dtype"]), name=s["name"]) for s in signature]
    input_names = [s["name"] for s in signature]
    probe = model(
        keras.tree.pack_sequence_as(input_structure, [_probe_array(s) for s in signature])
        if input_structure is not None and len(signature) > 1
        else _probe_array(signature[0]),
        training=False,
    )
    output_names = _output_names(model, len(keras.tree.flatten(probe)))

    @tf.function
    def serve(*args):
        if input_structure is not None and len(args) > 1:
            inputs = keras.tree.pack_sequence_as(input_structure, list(args))
        else:
            inputs = args[0]
        outputs = keras.tree.flatten(model(inputs, training=False))
        return {name: tf.identity(out) for name, out in zip(output_names, outputs)}

    # Tensors captured by value (e.g. the mean and variance of a Normalization
    # layer built from given stats) are not variables; tf2onnx would turn them
    # into extra graph inputs. They become initializers below.
    concrete = serve.get_concrete_function(*specs)
    captured = {}
    for placeholder, value in zip(concrete.inputs[len(specs) :], concrete.captured_inputs):
        if placeholder.dtype != tf.resource:
            captured[placeholder.name] = value.numpy()

    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=specs, opset=opset, output_path=None
    )
    graph = proto.graph
    used = {name for node in graph.node for name in node.input}
    for graph_input in list(graph.input):
        if graph_input.name in captured:
            graph.input.remove(graph_input)
            if graph_input.name in used:
                graph.initializer.append(
                    numpy_helper.from_array(
                        np.asarray(captured[graph_input.name]), graph_input.name
                    )
                )
    remaining = [i.name for i in graph.input]
    if remaining != input_names:
        raise ValueError(f"converted graph has inputs {remaining}, expected {input_names}")
    # tf2onnx orders dict outputs by key; restore the model's output order.
    by_name = {o.name: o for o in graph.output}
    ordered = [by_name[name] for name in output_names]
    del graph.output[:]
    graph.output.extend(ordered)
    for value_info in list(graph.input) + list(graph.output):
        dims = value_info.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"

    metadata = dict(request.get("metadata") or {})
    if "normalization" not in metadata:
        stats = _normalization_stats(model)
        if stats is not None:
            metadata["normalization"] = stats
    metadata["input_names"] = input_names
    metadata["output_names"] = output_names
    metadata["opset"] = opset
    metadata["exporter"] = f"tf2onnx {tf2onnx.__version__}, tensorflow {tf.__version__}"
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(value, sort_keys=True)
    proto.producer_name = "keras_trainer"
    onnx.checker.check_model(proto)
    _atomic_write_bytes(request["output"], proto.SerializeToString())
    return input_names, output_names


def _signature(model, signature):
    """The inputs to trace (`[{name, shape, dtype}]`, the model's own when None) and their
    structure in the model (None for a model without defined inputs)."""
    import keras

    if signature is None:
        if not getattr(model, "inputs", None):
            raise ValueError(
                "the model has no defined inputs (a subclassed model?); "
                "pass `input_signature=[(shape, dtype), ...]`"
            )
        input_structure = model.input
        flat_inputs = keras.tree.flatten(input_structure)
        signature = [
            {"name": t.name, "shape": [None] + list(t.shape[1:]), "dtype": str(t.dtype)}
            for t in flat_inputs
        ]
        return signature, input_structure
    input_structure = model.input if getattr(model, "inputs", None) else None
    if input_structure is not None and len(keras.tree.flatten(input_structure)) != len(signature):
        raise ValueError(
            f"input_signature has {len(signature)} entries but the model has "
            f"{len(keras.tree.flatten(input_structure))} inputs"
        )
    return signature, input_structure


def _probe_array(spec):
    import numpy as np

    shape = [1 if d is None else d for d in spec["shape"]]
    return np.zeros(shape, dtype=spec["dtype"])


def main(argv):
    job_path, result_path = argv[1], argv[2]
    with open(job_path) as f:
        job = json.load(f)
    results = []
    for request in job["requests"]:
        entry = {"output": request["output"], "error": None}
        try:
            entry["input_names"], entry["output_names"] = _convert_one(request, job["opset"])
        except Exception as error:  # reported back to the parent as ExportError.
            entry["error"] = f"{type(error).__name__}: {error}"
            entry["traceback"] = traceback.format_exc(limit=6)
        results.append(entry)
    _atomic_write_bytes(result_path, json.dumps(results).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
