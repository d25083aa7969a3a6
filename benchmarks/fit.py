"""Training steps/s: plain Keras `fit`, the shared `fit` on each engine, a hand-written loop.

    KERAS_BACKEND=jax python benchmarks/fit.py [--samples 32000] [--batches 32 1024] \
        [--steps 2000] [--rounds 5]

Every contender trains the seed's 12-64-32-5 MLP (ReLU, softmax, categorical
cross-entropy, Adam 1e-3, accuracy metric) on the same arrays, in the same process:

* plain `keras.Model.fit` on the arrays with `shuffle=True` (the reference);
* `keras_trainer.core.training.fit` with `training.engine: "keras"` (Keras `fit` fed by
  the reproducible per-epoch shuffle, with history, NaN guard and logs);
* the same `fit` with `training.engine: "fused"` (arrays on the device, a whole
  epoch per compiled call, same callbacks at epoch granularity);
* on torch with a CPU, the same with the model's `jit_compile=True`: the traced
  step compiled by `torch.compile`, as the engine runs it after 10,000 steps (the
  compile time is printed and left out);
* a hand-written JAX loop: one `jax.jit`-compiled `lax.scan` over the epoch's
  batches with Adam written out, no Keras (runs whenever JAX is installed,
  whatever the Keras backend): the ceiling a fused loop can reach here.

No validation data, so every contender does the same work. Each is warmed up
(compilation excluded); then they take turns for `--rounds` rounds of about
`--steps` optimizer steps (whole epochs) each, and medians are compared, so
load from other processes hits all alike. Ratios are against plain Keras `fit`.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import logging
import math
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer.config import ModelConfig, TrainingConfig  # noqa: E402
from keras_trainer.core.building.models import build_model  # noqa: E402
from keras_trainer.core.training.fit import fit  # noqa: E402


def jax_scan_trainer(x: np.ndarray, y: np.ndarray, batch: int, seed: int = 0):
    """Returns `run_epoch() -> steps` training the same MLP with a jitted lax.scan, or None."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    sizes = [x.shape[1], 64, 32, y.shape[1]]
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    params = [
        (jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / (m + n)), jnp.zeros(n))
        for k, m, n in zip(keys, sizes[:-1], sizes[1:])
    ]
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = (params, zeros, zeros, jnp.zeros((), jnp.int32))
    steps = len(x) // batch
    xb = jnp.asarray(x[: steps * batch].reshape(steps, batch, -1))
    yb = jnp.asarray(y[: steps * batch].reshape(steps, batch, -1))

    def loss_fn(params, xs, ys):
        h = xs
        for w, b in params[:-1]:
            h = jax.nn.relu(h @ w + b)
        w, b = params[-1]
        logp = jax.nn.log_softmax(h @ w + b)
        return -jnp.mean(jnp.sum(ys * logp, axis=-1))

    def step(state, batch_data):
        params, m, v, t = state
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch_data)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        lr = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree_util.tree_map(
            lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-7), params, m, v
        )
        return (params, m, v, t), loss

    @jax.jit
    def epoch(state, xb, yb, key):
        order = jax.random.permutation(key, xb.shape[0])
        return jax.lax.scan(step, state, (xb[order], yb[order]))

    holder = {"state": state, "epoch": 0}

    def run_epoch():
        key = jax.random.PRNGKey(holder["epoch"])
        holder["state"], losses = epoch(holder["state"], xb, yb, key)
        losses.block_until_ready()
        holder["epoch"] += 1
        return steps

    return run_epoch


def compile_listener(totals: collections.Counter, programs: collections.Counter | None = None):
    """A `jax.monitoring` duration listener: seconds and counts (`"<event> (count)"`) of
    JAX's compile, tracing and lowering events into `totals`; with `programs`, each
    backend compile's seconds and count under its program's name (`jit(train_member)`)."""

    def listen(event: str, duration: float, fun_name: str = "", **_):
        if "compile" in event or "trac" in event or "lower" in event:
            totals[event] += duration
            totals[event + " (count)"] += 1
            if programs is not None and event.endswith("backend_compile_duration"):
                programs[fun_name] += duration
                programs[fun_name + " (count)"] += 1

    return listen


def device_name() -> str:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}:{getattr(device, 'device_kind', '')}"
    if backend == "torch":
        import torch

        return f"cuda:{torch.cuda.get_device_name()}" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def measure(batch: int, x: np.ndarray, y: np.ndarray, target_steps: int, rounds: int) -> dict:
    steps_per_epoch = math.ceil(len(x) / batch)
    epochs = max(1, round(target_steps / steps_per_epoch))
    steps = steps_per_epoch * epochs

    plain = build_model(ModelConfig(output_dim=5), (12,))
    plain.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    config = TrainingConfig(
        epochs=1, batch_size=batch, verbose=0, validation_split=0.0, early_stopping_patience=0
    )
    engines = ["keras", "fused"]
    if keras.backend.backend() == "torch" and device_name() == "cpu":  # CUDA: graphs instead
        engines.append("fused, torch.compile")
    models = {engine: build_model(ModelConfig(output_dim=5), (12,)) for engine in engines}

    def run_plain(n):
        plain.fit(x, y, batch_size=batch, epochs=n, verbose=0, shuffle=True)

    def run_engine(engine):
        def run(n):
            settings = config.replace(epochs=n, engine=engine.split(",")[0])
            fit(models[engine], x, y, config=settings, compile=False)

        return run

    contenders = {"plain keras fit": run_plain}
    contenders.update({f'keras_trainer fit, engine "{name}"': run_engine(name) for name in engines})
    for engine, model in models.items():  # compile once, with the same config
        fit(model, x, y, config=config.replace(engine=engine.split(",")[0]))
        if "torch.compile" in engine:  # what the torch engine does after 10,000 steps
            model.jit_compile = True
            start = time.perf_counter()
            run_engine(engine)(1)
            print(
                f"batch {batch}: torch.compile of the traced step took {time.perf_counter() - start:.1f} s"
            )
    run_plain(1)
    scan_epoch = jax_scan_trainer(x, y, batch)
    if scan_epoch is not None:
        scan_epoch()
        contenders["hand-written jax lax.scan"] = lambda n: [scan_epoch() for _ in range(n)]
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run(epochs)
            rates[name].append(steps / (time.perf_counter() - start))
    return {name: float(np.median(values)) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32000)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 1024])
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("keras_trainer").setLevel(logging.INFO)  # engine choice, CUDA graph fallback
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 12)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, args.samples)]
    print(
        f"date={datetime.date.today()} backend={keras.backend.backend()} device={device_name()} "
        f"host={platform.machine()} samples={args.samples} steps/round~{args.steps} "
        f"rounds={args.rounds}"
    )
    print("| batch | contender | steps/s | x plain keras fit |")
    print("|---:|---|---:|---:|")
    for batch in args.batches:
        rates = measure(batch, x, y, args.steps, args.rounds)
        reference = rates["plain keras fit"]
        for name, rate in rates.items():
            print(f"| {batch} | {name} | {rate:,.0f} | {rate / reference:.2f} |", flush=True)


if __name__ == "__main__":
    main()
