"""keras_trainer.core."""
