"""The JIT model: learning which strategy to pick from IR features.

`ModelTrainer` (training, evaluating and saving the strategy classifier:
`trainer`) and the labels, runtime reports and fallback threshold it learns from
measured times (`choices`), and the cost model, a regression of each strategy's
speed-up and compile-cost ratio that the tiering policies can consult (`cost_model`).
"""
