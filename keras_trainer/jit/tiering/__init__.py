"""Tiering: when a JIT compiles which function at which level, replayed on measurements.

A workload is a measured dataset (per-call and compile times of every function
under every strategy) with a call count per function (`workload`); policies
decide, call by call, when to recompile and at which level (`policies`: always
one strategy, a tiered threshold, the Jikes RVM cost-benefit model, autotuning of
hot code, and the shipped `recommended` mix); `replay` totals what a policy costs
against the hindsight oracle, `policy_eval` compares policies out of fold by
program family, and `replay_cli` is `keras-trainer jit-replay`. The same policies
decide live calls in `jit.runtime.tiering`.
"""
