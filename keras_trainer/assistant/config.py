"""The assistant's config: model sizes, vocabulary and training knobs in one place.

Example:

>>> from keras_trainer.assistant.config import load_assistant_config
>>> config = load_assistant_config({"hidden_dim": 64})
>>> config.embedding_dim
128
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal, Optional, Union

from keras_trainer.config.fields import json_schema_for, option, to_dict
from keras_trainer.config.schema import CheckpointConfig, TrainingConfig


@dataclasses.dataclass
class AssistantConfig:
    """Sizes of the seq2seq assistant, its tokens, and how it is trained.

    The sizes are the seed model's; copy attention, subword tokens and early
    stopping on a held-out tenth are on by default.
    """

    embedding_dim: int = option(128, exclusive_minimum=0, description="Token embedding width.")
    hidden_dim: int = option(
        256,
        exclusive_minimum=0,
        description="Encoder LSTM width per direction; the decoder is twice as wide.",
    )
    max_length: int = option(
        64,
        minimum=2,
        description="Most tokens per query or response, <EOS> included; longer text is cut.",
    )
    dropout: float = option(
        0.1, minimum=0.0, exclusive_maximum=1.0, description="Dropout rate everywhere."
    )
    copy_attention: bool = option(
        True,
        description="Copy attention (pointer-generator): the decoder can copy query tokens, "
        "words outside the vocabulary included. false builds the seed's model exactly.",
    )
    tokenizer: Literal["subword", "word"] = option(
        "subword",
        description="Case-preserving tokens: 'subword' (byte-pair pieces, never unknown) or "
        "'word' (unknown words become <UNK>).",
    )
    vocab_size: int = option(
        600,
        minimum=5,
        description="Most tokens in the vocabulary learned from the training data, special "
        "tokens included (a subword vocabulary needs 260 plus the characters of the data).",
    )
    min_freq: int = option(
        1, exclusive_minimum=0, description="'word' tokenizer: words seen fewer times become <UNK>."
    )
    learning_rate: float = option(0.002, exclusive_minimum=0.0, description="Adam learning rate.")
    batch_size: int = option(32, exclusive_minimum=0, description="Pairs per batch.")
    epochs: int = option(
        60, exclusive_minimum=0, description="Most training epochs (early stopping usually ends sooner)."
    )
    gradient_clip_norm: float = option(
        1.0, exclusive_minimum=0.0, description="Clip each gradient to this L2 norm."
    )
    validation_split: float = option(
        0.1,
        minimum=0.0,
        exclusive_maximum=1.0,
        description="Fraction of pairs (a seeded random part) held out for early stopping and "
        "the exact-match / token-F1 report; 0 trains on all and keeps the best training loss.",
    )
    early_stopping_patience: int = option(
        8, minimum=0, description="Epochs without improvement before stopping; 0 turns it off."
    )
    seed: Optional[int] = option(42, minimum=0, description="Random seed; null leaves it random.")
    data_path: Optional[str] = option(
        None, description="training_data.json; null uses the bundled dataset."
    )
    checkpoint_dir: Optional[str] = option(
        None, description="Where the best checkpoint is kept; null keeps it in memory only."
    )
    verbose: int = option(0, minimum=0, maximum=2, description="Keras progress output.")

    def to_training_config(self) -> TrainingConfig:
        """Returns the shared `TrainingConfig` that `keras_trainer.core.fit.fit` runs with."""
        monitor = "val_loss" if self.validation_split > 0 else "loss"
        return TrainingConfig(
            batch_size=self.batch_size,
            epochs=self.epochs,
            validation_split=self.validation_split,
            learning_rate=self.learning_rate,
            early_stopping_patience=self.early_stopping_patience,
            early_stopping_monitor=monitor,
            restore_best_weights=True,
            loss="sparse_categorical_crossentropy",
            metrics=[],
            seed=self.seed,
            verbose=self.verbose,
            gradient_clip_norm=self.gradient_clip_norm,
            checkpoint=CheckpointConfig(
                directory=self.checkpoint_dir, monitor=monitor, save_best=True
            ),
        )


def load_assistant_config(
    source: Union[str, os.PathLike, dict, AssistantConfig, None] = None,
) -> AssistantConfig:
    """Validates an assistant config from a JSON file, a dict, or a config.

    Args:
        source: Path to a JSON file (e.g. `config/assistant_config.json`), a dict,
            an `AssistantConfig`, or None for the defaults.

    Returns:
        The validated `AssistantConfig`.

    Raises:
        ConfigError: naming the file and the key path of the bad value.
    """
    from keras_trainer.config import load_section

    return load_section(AssistantConfig, source, "assistant config")


def assistant_config_schema() -> dict[str, Any]:
    """Returns the JSON Schema of `config/assistant_config.json`."""
    return json_schema_for(AssistantConfig)


def config_to_dict(config: AssistantConfig) -> dict[str, Any]:
    """Returns the plain dict form of `config` (stored inside saved models)."""
    return to_dict(config)
