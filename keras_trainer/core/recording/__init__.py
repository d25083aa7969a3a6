"""Recording: what a training run leaves behind for people to read.

Run folders `runs/<name>/version_N/` (`runs`), the epoch-by-epoch history
(`history`), optional MLflow tracking of a finished run (`tracking`), PNG plots
of curves and confusion matrices (`plots`) and the optional Weights & Biases
logger (`wandb_logging`).
"""
