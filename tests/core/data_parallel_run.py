"""Data-parallel training runs for the distribution tests, run in one child process.

    python data_parallel_run.py OUT.json RUNS.json

The child sets up two CPU devices before the backend starts (XLA's host platform
device count on JAX, logical CPU devices on TensorFlow), then does each run of
RUNS.json (`{name: {"devices": N, "epochs": E, "checkpoint": DIR, "resume": bool,
"precision": "bfloat16", "save": MODEL.keras, "batch_size": B}}`, all optional) in
order: it trains a small MLP with `training.distribution = {"strategy":
"data_parallel", "devices": N}` (or no distribution when N is 1) and writes, per
run, the losses, the final weights and how the trained variables and batches were
laid out, to OUT.json. One process for all runs: each backend start costs more
than a run.
"""

import argparse
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("runs")
args = parser.parse_args()
DEVICES = 2

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "jax":
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={DEVICES}"
elif BACKEND == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * DEVICES
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer.config import ModelConfig, TrainingConfig  # noqa: E402
from keras_trainer.core.building.models import build_model  # noqa: E402
from keras_trainer.core.saving.persistence import save_model  # noqa: E402
from keras_trainer.core.training.fit import fit  # noqa: E402
from keras_trainer.errors import KerasTrainerError  # noqa: E402

layout = {"batch_rows_per_device": set(), "devices_per_batch": set()}


class RecordLayout(keras.layers.Layer):
    """Identity layer that records how each training batch is split over devices."""

    def call(self, inputs):
        if BACKEND == "jax":
            import jax

            def record(sharding):
                layout["devices_per_batch"].add(len(sharding.device_set))
                layout["batch_rows_per_device"].add(sharding.shard_shape(tuple(inputs.shape))[0])

            jax.debug.inspect_array_sharding(inputs, callback=record)
        elif BACKEND == "tensorflow":
            import tensorflow as tf

            context = tf.distribute.get_replica_context()
            # Only the traced training steps: model construction sees no batch size.
            if context is not None and inputs.shape[0] is not None:
                layout["devices_per_batch"].add(context.num_replicas_in_sync)
                layout["batch_rows_per_device"].add(int(inputs.shape[0]))
        return inputs


class RecordVariables(keras.callbacks.Callback):
    """Records on how many devices the trained model's variables live, and the epochs trained."""

    def on_epoch_begin(self, epoch, logs=None):
        layout["epochs_trained"] = layout.get("epochs_trained", 0) + 1

    def on_train_begin(self, logs=None):
        copies = set()
        for variable in self.model.trainable_variables:
            value = variable.value
            if BACKEND == "jax":
                assert value.sharding.is_fully_replicated
                copies.add(len(value.sharding.device_set))
            elif BACKEND == "tensorflow":
                copies.add(len(getattr(value, "values", [value])))
            else:
                copies.add(1)
        layout["variable_copies"] = sorted(copies)


def train(run: dict) -> dict:
    devices = run.get("devices", 2)
    precision = run.get("precision", "off")
    layout.clear()
    layout.update(batch_rows_per_device=set(), devices_per_batch=set())
    distribution = {"strategy": "data_parallel", "devices": devices} if devices > 1 else {}
    config = TrainingConfig.from_dict(
        {
            "epochs": run.get("epochs", 2),
            "batch_size": run.get("batch_size", 16),
            "seed": 7,
            "verbose": 0,
            "validation_split": 0.25,
            "early_stopping_patience": 2,
            "optimizer": {"name": "adam"},
            "mixed_precision": precision,
            "distribution": distribution,
            "checkpoint": {"directory": run.get("checkpoint"), "max_checkpoints": 2},
            "resume": run.get("resume", False),
        }
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    keras.utils.set_random_seed(1)
    policy = "float32" if precision == "off" else f"mixed_{precision}"
    body = build_model(ModelConfig(input_dim=6, hidden_layers=[16], output_dim=3), (6,), policy)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, body(RecordLayout()(inputs)))
    try:
        history = fit(model, x, y, config=config, callbacks=[RecordVariables()])
    except KerasTrainerError as error:
        return {"error": type(error).__name__, "message": str(error)}
    if run.get("save"):
        save_model(body, run["save"])  # the MLP alone: the recording layer is test-only
    return {
        "loss": history.history["loss"],
        "val_loss": history.history["val_loss"],
        "epochs": history.epochs,
        "weights": [np.asarray(w, dtype="float64").tolist() for w in model.get_weights()],
        "devices_per_batch": sorted(layout["devices_per_batch"]),
        "batch_rows_per_device": sorted(layout["batch_rows_per_device"]),
        "variable_copies": layout.get("variable_copies", []),
        "resumed_from": [history.resumed_from_epoch, history.resumed_from_step],
        "epochs_trained": layout.get("epochs_trained", 0),
    }


def main():
    with open(args.runs) as handle:
        runs = json.load(handle)
    results = {name: train(run) for name, run in runs.items()}
    with open(args.out, "w") as handle:
        json.dump(results, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
