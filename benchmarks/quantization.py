"""Benchmark: what int8 quantization does to the JIT strategy model.

Trains the JIT model as `keras-trainer train config/jit_tuned.json` does
(bundled dataset, the same stratified test split), exports it to ONNX, makes
dynamic and static (calibrated on training rows) int8 copies, and reports on
the held-out split: accuracy and regret (total measured runtime of the chosen
strategies / the per-sample fastest), file size, and batch-1 / batch-1024
latency through `CompiledInferenceLayer`, float vs int8, in one run.

Usage:
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/quantization.py [--json out.json]
"""

import argparse
import json
import os
import platform
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from keras_trainer.export import export_onnx, quantization_report, quantize_onnx  # noqa: E402
from keras_trainer.jit import SAMPLE_DATASET_PATH  # noqa: E402
from keras_trainer.jit.cli import stratified_split  # noqa: E402
from keras_trainer.jit.config import load_jit_config  # noqa: E402
from keras_trainer.jit.data.collect import load_dataset, read_dataset  # noqa: E402
from keras_trainer.jit.model.trainer import ModelTrainer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/jit_tuned.json")
    parser.add_argument("--iterations", type=int, default=1000, help="batch-1 calls per model")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    config = load_jit_config(args.config)
    config.training.verbose = 0
    data = read_dataset(SAMPLE_DATASET_PATH)
    ir_samples, runtime_data, labels = load_dataset(SAMPLE_DATASET_PATH)
    strategies = data["strategies"]
    times = np.array(
        [[s["timings_ns"][name] for name in strategies] for s in data["samples"]], "float64"
    )
    train_idx, test_idx = stratified_split(
        np.asarray(labels), config.data.test_split, config.training.seed or 0
    )
    pick = lambda items, idx: [items[i] for i in idx]  # noqa: E731

    trainer = ModelTrainer(config)
    trainer.class_names = strategies
    x_train, y_train = trainer.prepare_training_data(
        pick(ir_samples, train_idx), pick(runtime_data, train_idx), pick(labels, train_idx)
    )
    trainer.create_model(x_train.shape[1])
    trainer.train((x_train, y_train))
    raw_train = trainer.extract_features(pick(ir_samples, train_idx), pick(runtime_data, train_idx))
    raw_test = trainer.extract_features(pick(ir_samples, test_idx), pick(runtime_data, test_idx))

    workdir = tempfile.mkdtemp(prefix="bench_quantization_")
    keras_path = trainer.save_model(os.path.join(workdir, "jit.keras"))
    float_path = export_onnx(keras_path, os.path.join(workdir, "jit.onnx"))
    results = {}
    for mode in ("dynamic", "static"):
        quantized = quantize_onnx(
            float_path,
            os.path.join(workdir, f"jit.{mode}.onnx"),
            mode,
            calibration_data=raw_train if mode == "static" else None,
        )
        report = quantization_report(
            float_path,
            quantized,
            raw_test,
            np.asarray(pick(labels, test_idx)),
            strategy_times=times[test_idx],
            latency_iterations=args.iterations,
        )
        print(report.to_text(), "\n")
        results[mode] = report.to_dict()
    fixed = {
        name: float(times[test_idx, k].sum() / times[test_idx].min(1).sum())
        for k, name in enumerate(strategies)
    }
    print("fixed-strategy regret on the same split:", {k: round(v, 4) for k, v in fixed.items()})
    print(
        f"device: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        "1 thread per engine"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"reports": results, "fixed_strategy_regret": fixed}, handle, indent=2)


if __name__ == "__main__":
    main()
