#!/bin/sh
# The GPU runs of issue 13 (fused engine, population); results go to $OUT.
set -x
nvidia-smi --query-gpu=name,memory.total --format=csv
KERAS_BACKEND=jax python3 benchmarks/fit.py $FIT_ARGS 2>&1 | grep -v Warning | tee $OUT/fit_jax.txt
KERAS_BACKEND=torch python3 benchmarks/fit.py $TORCH_ARGS 2>&1 | grep -v Warning | tee $OUT/fit_torch.txt
KERAS_BACKEND=jax python3 benchmarks/population.py $POP_ARGS 2>&1 | grep -v Warning | tee $OUT/population_jax.txt
