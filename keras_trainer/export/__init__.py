"""keras_trainer.export."""
