"""keras_trainer.jit."""
