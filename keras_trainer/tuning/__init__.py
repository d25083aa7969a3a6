"""keras_trainer.tuning."""
