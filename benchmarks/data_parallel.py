"""Training throughput on N devices against one, through the shared `fit`.

    KERAS_BACKEND=jax python benchmarks/data_parallel.py [--devices 2] [--epochs 4]
        [--family assistant,tabular] [--scale 1.0]

For each family, the same model and data train twice in this process: once with
`training.distribution.strategy = "none"` (one device, what a user runs today)
and once with `{"strategy": "data_parallel", "devices": N}` at the same global
batch. Samples per second are the median over the epochs after the first (the
first compiles). The ratio is data-parallel over one device.

* assistant: the seq2seq network at the design's sizes (embedding 128, hidden
  256, 2-layer BiLSTM encoder, 2-layer attention decoder), random token batches
  of length 32 from a 2,000-token vocabulary, global batch 1,024.
* tabular: a feed-forward net of three 1,024-unit layers on 256 features,
  10 classes, global batch 8,192.

`--scale` shrinks the data and batch sizes (e.g. 0.02 for a CPU smoke run with
`XLA_FLAGS=--xla_force_host_platform_device_count=2`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer.config import ModelConfig, TrainingConfig  # noqa: E402
from keras_trainer.core.building.models import build_model  # noqa: E402
from keras_trainer.core.training.fit import fit  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def _assistant(scale: float):
    from keras_trainer.assistant.config import AssistantConfig
    from keras_trainer.assistant.model import assistant_loss, build_assistant_model

    vocab, length = 2000, 32
    rows = max(int(32768 * scale), 64)
    batch = max(int(1024 * scale) // 16 * 16, 16)
    rng = np.random.default_rng(0)
    query = rng.integers(4, vocab, (rows, length)).astype("int32")
    response = rng.integers(4, vocab, (rows, length)).astype("int32")
    response_in = np.concatenate([np.ones((rows, 1), "int32"), response[:, :-1]], 1)

    def build():
        return build_assistant_model(AssistantConfig(embedding_dim=128, hidden_dim=256), vocab)

    return build, {"query": query, "response_in": response_in}, response, batch, assistant_loss()


def _tabular(scale: float):
    rows = max(int(262144 * scale), 64)
    batch = max(int(8192 * scale) // 16 * 16, 16)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 256)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, rows)]
    config = ModelConfig(type="mlp", input_dim=256, hidden_layers=[1024, 1024, 1024], output_dim=10)

    def build():
        return build_model(config, (256,))

    return build, x, y, batch, None


FAMILIES = {"assistant": _assistant, "tabular": _tabular}


def throughput(build, x, y, batch, loss, epochs: int, distribution: dict) -> float:
    keras.utils.set_random_seed(0)
    model = build()
    config = TrainingConfig.from_dict(
        {
            "epochs": epochs,
            "batch_size": batch,
            "validation_split": 0.0,
            "early_stopping_patience": 0,
            "verbose": 0,
            "seed": 0,
            "distribution": distribution,
        }
    )
    timer = EpochTimer()
    fit(model, x, y, config=config, loss=loss, callbacks=[timer])
    rows = len(y)
    return rows / statistics.median(timer.seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--family", default="assistant,tabular")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    devices = keras.distribution.list_devices() if keras.backend.backend() == "jax" else []
    print(f"backend={keras.backend.backend()} devices={devices}")
    for family in args.family.split(","):
        build, x, y, batch, loss = FAMILIES[family](args.scale)
        one = throughput(build, x, y, batch, loss, args.epochs, {})
        many = throughput(
            build,
            x,
            y,
            batch,
            loss,
            args.epochs,
            {"strategy": "data_parallel", "devices": args.devices},
        )
        print(
            f"{family:10s} global batch {batch:5d}: 1 device {one:12.0f} samples/s   "
            f"{args.devices} devices {many:12.0f} samples/s   ratio {many / one:.2f}x"
        )


if __name__ == "__main__":
    main()
