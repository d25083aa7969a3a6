"""JAX compiles every new Keras train/test step with XLA (~1 s each on 2 CPU cores).
A per-session persistent compilation cache lets models of the same shapes reuse
programs (trials of one search differ only in variable values), keeping the
tests within budget. It must be configured before JAX is imported."""

import os
import tempfile

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="kt_jax_cache_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
