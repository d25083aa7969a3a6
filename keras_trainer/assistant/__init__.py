"""keras_trainer.assistant."""
