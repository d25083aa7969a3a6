"""Evaluating: how good a trained model is, and which of several is better.

Reports on held-out data (`evaluation`), the scores behind them (`scoring`),
whether a metric is better higher or lower (`metrics`), models side by side
(`comparison`) and the one shape of a table of results (`tables`), k-fold
cross-validation (`cross_validation`), several models averaged as one
(`ensemble`) and raw outputs turned into labelled predictions (`predictions`).
"""
