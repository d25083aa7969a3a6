"""Runtime: compiling, running and timing IR, apart from the caller's process.

Compiling IR under a strategy into a Python callable (`engine`), running
untrusted IR in a child process with a time limit (`sandbox`), the measuring
worker that times one module under every strategy (`worker`, started by
`jit.data.collect`), and the adaptive JIT that asks a trained model for the
strategy per module (`adaptive`), and the tiered functions whose tiering
policy (`jit.tiering`) recompiles them while they run (`tiering`).
"""
