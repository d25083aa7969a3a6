"""The assistant's config: model sizes, vocabulary, and a shared `training` section.

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

from keras_trainer.config.fields import ConfigSection, json_schema_for, option, to_dict
from keras_trainer.config.schema import TrainingConfig

# Training settings that differ from `TrainingConfig`'s defaults for the assistant.
TRAINING_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.002,
    "batch_size": 32,
    "epochs": 60,
    "gradient_clip_norm": 1.0,
    "validation_split": 0.1,
    "early_stopping_patience": 8,
    "seed": 42,
    "verbose": 0,
    "loss": "sparse_categorical_crossentropy",
    "metrics": [],
}
# Keys the assistant config used to hold at its top level; still accepted there and
# moved into `training` (`checkpoint_dir` becomes `training.checkpoint.directory`).
LEGACY_TRAINING_KEYS = (
    "learning_rate",
    "batch_size",
    "epochs",
    "gradient_clip_norm",
    "validation_split",
    "early_stopping_patience",
    "seed",
    "verbose",
)


def assistant_training(**changes: Any) -> TrainingConfig:
    """The assistant's default `TrainingConfig` (`TRAINING_DEFAULTS`) with `changes` applied."""
    return TrainingConfig.from_dict({**TRAINING_DEFAULTS, **changes}, "training")


@dataclasses.dataclass
class AssistantConfig(ConfigSection):
    """Sizes of the seq2seq assistant, its tokens, and how it is trained.

    The sizes are the seed model's; copy attention and subword tokens are on by
    default. Training runs through the shared `fit` with `training` (a
    `TrainingConfig` whose defaults are `TRAINING_DEFAULTS`: at most 60 epochs,
    early stopping after 8 without improvement on a random tenth held out). The
    best epoch's weights are kept: by validation loss with a `validation_split`,
    else by training loss.
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
        description="Copy attention (pointer-generator): the decoder can copy query words, "
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
    data_path: Optional[str] = option(
        None, description="training_data.json; null uses the bundled dataset."
    )
    training: TrainingConfig = option(
        default_factory=assistant_training,
        description=(
            "How the assistant is trained (shared `training` section; assistant defaults: "
            "learning_rate 0.002, epochs 60, gradient_clip_norm 1.0, validation_split 0.1, "
            "early_stopping_patience 8, verbose 0, sparse categorical cross-entropy). "
            "`checkpoint.directory` keeps the best epoch as best.keras."
        ),
    )

    @classmethod
    def upgrade(cls, data: Any) -> Any:
        """Accepts the older flat form (`epochs`, `batch_size`, ... at the top level)
        and fills `training` with the assistant's defaults."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        training = data.get("training", {})
        if not isinstance(training, dict):
            return data
        training = {
            **TRAINING_DEFAULTS,
            **{k: data.pop(k) for k in LEGACY_TRAINING_KEYS if k in data},
            **training,
        }
        if "checkpoint_dir" in data:
            checkpoint = dict(training.get("checkpoint", {}))
            checkpoint.setdefault("directory", data.pop("checkpoint_dir"))
            training["checkpoint"] = checkpoint
        data["training"] = training
        return data

    @property
    def seed(self) -> Optional[int]:
        """The training seed (also seeds weight initialization)."""
        return self.training.seed

    def to_training_config(self) -> TrainingConfig:
        """Returns the `TrainingConfig` that `keras_trainer.core.training.fit.fit` runs with.

        The monitor follows `validation_split` (validation loss, else training loss)
        and early stopping keeps the best epoch's weights; with patience 0 it never
        stops early (patience = epochs) but still restores the best weights.
        """
        training = self.training
        monitor = "val_loss" if training.validation_split > 0 else "loss"
        patience = training.early_stopping_patience or training.epochs
        checkpoint = training.checkpoint.replace(monitor=monitor, save_best=True)
        return training.replace(
            early_stopping_monitor=monitor,
            early_stopping_patience=patience,
            restore_best_weights=True,
            checkpoint=checkpoint.to_dict(),
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
