"""Training steps per second of the shared `fit` against plain Keras and a hand-written loop.

    KERAS_BACKEND=jax python benchmarks/fit.py [--samples 32000] [--epochs 2] [--rounds 5]

All three train the seed's 12-64-32-5 MLP (ReLU, softmax, categorical
cross-entropy, Adam 1e-3) at batch 32 on the same arrays, in the same process:

* `keras_trainer.core.fit` (reproducible per-epoch shuffling, history, NaN guard,
  early-stopping bookkeeping), as configured by default and with
  `training.steps_per_execution` (several batches per compiled call);
* plain `keras.Model.fit` on the arrays with `shuffle=True`;
* a hand-written JAX training loop: one `jax.jit`-compiled `lax.scan` over the
  epoch's batches with Adam written out, no Keras at all; the ceiling of what a
  fused loop reaches on this device (runs whenever JAX is installed).

Each is warmed up for one epoch (compilation excluded); then they take turns for
`--rounds` rounds, and medians are compared, so load from other processes hits
all alike. Ratios are against plain Keras `fit`.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_trainer.config import ModelConfig, TrainingConfig  # noqa: E402
from keras_trainer.core.fit import fit  # noqa: E402
from keras_trainer.core.models import build_model  # noqa: E402

BATCH = 32


def jax_scan_trainer(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """Returns `run_epoch()` training the same MLP with a jitted lax.scan, or None."""
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
    steps = len(x) // BATCH
    xb = jnp.asarray(x[: steps * BATCH].reshape(steps, BATCH, -1))
    yb = jnp.asarray(y[: steps * BATCH].reshape(steps, BATCH, -1))

    def loss_fn(params, xs, ys):
        h = xs
        for w, b in params[:-1]:
            h = jax.nn.relu(h @ w + b)
        w, b = params[-1]
        logp = jax.nn.log_softmax(h @ w + b)
        return -jnp.mean(jnp.sum(ys * logp, axis=-1))

    def step(state, batch):
        params, m, v, t = state
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
        lr = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        params = jax.tree_util.tree_map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-7), params, m, v)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps-per-execution", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 12)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, args.samples)]
    steps_per_epoch = int(np.ceil(args.samples / BATCH))

    plain = build_model(ModelConfig(), (12,))
    plain.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    plain.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    ours = build_model(ModelConfig(), (12,))
    config = TrainingConfig(
        epochs=1, batch_size=BATCH, verbose=0, validation_split=0.0, early_stopping_patience=0
    )
    fit(ours, x, y, config=config)
    scan_epoch = jax_scan_trainer(x, y)
    if scan_epoch is not None:
        scan_epoch()

    # The torch backend runs one step per call (fit raises BackendNotSupportedError).
    fused = None if keras.backend.backend() == "torch" else build_model(ModelConfig(), (12,))
    fused_config = config.replace(steps_per_execution=args.steps_per_execution)
    if fused is not None:
        fit(fused, x, y, config=fused_config)
    fused_name = f"keras_trainer fit, steps_per_execution={args.steps_per_execution}"

    rates: dict[str, list[float]] = {
        "keras_trainer fit": [], fused_name: [], "plain keras fit": [], "jax lax.scan loop": []
    }
    for _ in range(args.rounds):
        start = time.perf_counter()
        fit(ours, x, y, config=config.replace(epochs=args.epochs), compile=False)
        rates["keras_trainer fit"].append(steps_per_epoch * args.epochs / (time.perf_counter() - start))
        if fused is not None:
            start = time.perf_counter()
            fit(fused, x, y, config=fused_config.replace(epochs=args.epochs), compile=False)
            rates[fused_name].append(steps_per_epoch * args.epochs / (time.perf_counter() - start))
        start = time.perf_counter()
        plain.fit(x, y, batch_size=BATCH, epochs=args.epochs, verbose=0, shuffle=True)
        rates["plain keras fit"].append(steps_per_epoch * args.epochs / (time.perf_counter() - start))
        if scan_epoch is not None:
            start = time.perf_counter()
            steps = sum(scan_epoch() for _ in range(args.epochs))
            rates["jax lax.scan loop"].append(steps / (time.perf_counter() - start))

    device = "cpu"
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0].platform
    elif keras.backend.backend() == "torch":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"backend={keras.backend.backend()} device={device} samples={args.samples} "
        f"batch={BATCH} epochs/round={args.epochs} rounds={args.rounds}"
    )
    reference = float(np.median(rates["plain keras fit"]))
    for name, values in rates.items():
        if values:
            median = float(np.median(values))
            print(f"{name:44s} {median:10.0f} steps/s   x plain keras fit: {median / reference:6.2f}")


if __name__ == "__main__":
    main()
