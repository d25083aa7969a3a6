"""Faster JAX compilation for tests that build many small models (set up by tests/conftest.py).

Under JAX every new Keras model compiles its train/test/predict steps with XLA
(~0.5-1 s each on 2 CPU cores), which dominates tests of tiny models. Two
settings cut that, without changing what the tests compute:

* a persistent compilation cache in a fresh temporary folder, so models of the
  same architecture and batch shapes (all trials of one search, the same
  network in several tests) reuse one compiled program. It is set through
  `jax.config` because the top-level conftest has already imported JAX (via
  Keras), after which the `JAX_COMPILATION_CACHE_DIR` variable is not read.
* XLA's CPU backend optimization level 0 (`XLA_FLAGS`, read when the CPU client
  starts, i.e. at the first computation): LLVM optimization of programs that
  run for milliseconds costs more than it saves.
"""

import os
import tempfile

import keras


def speed_up_jax_compilation() -> None:
    if keras.backend.backend() != "jax":
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_backend_optimization_level=0").strip()
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="kt_jax_cache_"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
