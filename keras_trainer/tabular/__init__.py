"""keras_trainer.tabular."""
