"""The JIT model: learning which strategy to pick from IR features.

`ModelTrainer` (training, evaluating and saving the strategy classifier:
`trainer`) and the labels, runtime reports and fallback threshold it learns from
measured times (`choices`).
"""
