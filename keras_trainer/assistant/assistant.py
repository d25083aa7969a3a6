"""The assistant workflow: train from a config, save into one file, load, chat.

Example:

>>> assistant, history = train_assistant({"epochs": 60, "hidden_dim": 64})
>>> assistant.save("models/assistant.keras")
>>> assistant = load_assistant("models/assistant.keras")
>>> generate_response(assistant, "What is keras_trainer?")
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional, Union

import keras
import numpy as np

from keras_trainer.assistant.config import (
    AssistantConfig,
    config_to_dict,
    load_assistant_config,
)
from keras_trainer.assistant.data import encode_queries, load_pairs, make_training_arrays
from keras_trainer.assistant.generation import BeamSearchGenerator, GreedyGenerator, check_query
from keras_trainer.assistant.model import (
    MaskedTokenAccuracy,
    assistant_loss,
    build_assistant_model,
    copy_layer,
)
from keras_trainer.assistant.tokenizer import AssistantTokenizer
from keras_trainer.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    KerasTrainerError,
    ModelError,
)

TASK = "assistant"


class Assistant:
    """A trained assistant: the Keras model, its tokenizer and its config.

    Args:
        model: The model from `build_assistant_model`.
        tokenizer: The tokenizer whose vocabulary the model was trained on.
        config: The config it was built with.
    """

    def __init__(self, model: keras.Model, tokenizer: AssistantTokenizer, config: AssistantConfig):
        if model.get_layer("output_logits").units != tokenizer.vocab_size:
            raise ModelError(
                f"model predicts {model.get_layer('output_logits').units} tokens but the "
                f"vocabulary has {tokenizer.vocab_size}"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self._generators: dict[tuple, keras.Model] = {}
        # Filled by train_assistant: loss, exact match and token F1 on the held-out part.
        self.evaluation: Optional[dict[str, float]] = None
        # The held-out test pairs (`keras_trainer.core.evaluating.held_out.split_record`),
        # recorded by the command line's `train`; `evaluate` scores them by default.
        self.split: Optional[dict[str, Any]] = None

    def metadata(self) -> dict[str, Any]:
        """What `save` stores inside the model file next to the weights."""
        metadata = {
            "task": TASK,
            "tokenizer": self.tokenizer.get_config(),
            "config": config_to_dict(self.config),
        }
        if self.split is not None:
            metadata["split"] = self.split
        return metadata

    def save(self, path: Union[str, os.PathLike]) -> str:
        """Writes model, vocabulary and config into one `.keras` file, atomically."""
        from keras_trainer.core.saving.persistence import save_model

        return save_model(self.model, path, metadata=self.metadata())

    @property
    def copy_attention(self) -> bool:
        """Whether the model copies query tokens (extended ids for unknown ones)."""
        return copy_layer(self.model) is not None

    def encode_queries(self, queries: Sequence[str], with_oovs: bool = False):
        """Validates queries and encodes them; long ones are cut with a warning.

        Args:
            queries: The questions.
            with_oovs: Also return each query's extended-vocabulary words (for
                `tokenizer.decode`).

        Returns:
            The model inputs `{"query": (n, max_length)}`, with copy attention also
            `"query_extended"`; or `(inputs, oovs)`.
        """
        for index, query in enumerate(queries):
            check_query(query, index if len(queries) > 1 else None)
        inputs, oovs = encode_queries(self.tokenizer, list(queries), self.copy_attention, warn=True)
        return (inputs, oovs) if with_oovs else inputs

    def generator(self, method: str = "greedy", max_length: int = 64, beam_width: int = 4):
        """Returns the (cached) compiled generator model for these settings."""
        if method not in ("greedy", "beam"):
            raise ConfigError(f"method: must be 'greedy' or 'beam', got {method!r}")
        if not isinstance(max_length, int) or max_length < 1:
            raise ConfigError(f"max_length: must be a positive integer, got {max_length!r}")
        if method == "beam" and (not isinstance(beam_width, int) or beam_width < 1):
            raise ConfigError(f"beam_width: must be a positive integer, got {beam_width!r}")
        key = (method, max_length, beam_width if method == "beam" else None)
        if key not in self._generators:
            if method == "greedy":
                self._generators[key] = GreedyGenerator(self.model, max_length)
            else:
                self._generators[key] = BeamSearchGenerator(self.model, max_length, beam_width)
        return self._generators[key]

    def generate_ids(self, inputs, **settings) -> np.ndarray:
        """Runs the compiled generator on `encode_queries`' inputs (or a query id
        array); returns `(n, max_length)` ids."""
        generator = self.generator(**settings)
        return np.asarray(keras.ops.convert_to_numpy(generator.predict_on_batch(inputs)))

    def generate_batch(
        self,
        queries: Sequence[str],
        max_length: int = 64,
        method: Literal["greedy", "beam"] = "greedy",
        beam_width: int = 4,
        batch_size: Optional[int] = None,
    ) -> list[str]:
        """Answers several queries in one compiled decoding loop.

        Args:
            queries: The questions.
            max_length: Most tokens per answer.
            method: "greedy" or "beam".
            beam_width: Beams for "beam".
            batch_size: Queries per loop; None runs all at once. The last batch
                is padded to the same size, so the loop is compiled once.
        """
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise DataError(f"queries must be a list of strings, got {type(queries).__name__}")
        if not queries:
            return []
        inputs, oovs = self.encode_queries(queries, with_oovs=True)
        size = len(queries) if batch_size is None else batch_size
        if not isinstance(size, int) or size < 1:
            raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
        settings = dict(method=method, max_length=max_length, beam_width=beam_width)
        ids = []
        for start in range(0, len(queries), size):
            chunk = {name: array[start : start + size] for name, array in inputs.items()}
            rows = len(chunk["query"])
            if rows < size:
                chunk = {
                    name: np.concatenate([a, np.repeat(a[:1], size - rows, axis=0)])
                    for name, a in chunk.items()
                }
            ids.append(self.generate_ids(chunk, **settings)[:rows])
        ids = np.concatenate(ids)
        return [self.tokenizer.decode(row, row_oovs) for row, row_oovs in zip(ids, oovs)]

    def generate(
        self,
        query: Union[str, Sequence[str], Mapping[str, Any], np.ndarray],
        max_length: int = 64,
        method: Literal["greedy", "beam"] = "greedy",
        beam_width: int = 4,
    ) -> Union[str, list[str], np.ndarray]:
        """Answers a query: the assistant document's `model.generate(query, max_length)`.

        Args:
            query: A question (returns its answer text), a list of questions
                (returns a list, see `generate_batch`), or a tokenized batch, the
                document's query tensor (returns answer ids `(n, max_length)` for
                `tokenizer.decode`): the inputs `encode_queries` returns, or a bare
                id array `(n, steps)` (a copy-attention model then copies only
                tokens of its vocabulary: it has no extended ids).
            max_length: Most tokens in the answer.
            method: "greedy" or "beam".
            beam_width: Beams for "beam".

        Raises:
            DataError: an empty query, or ids that are not a 2-D integer array.

        Example:

        >>> assistant.generate("How do I install pytest?", max_length=32)  # doctest: +SKIP
        'Run pip install pytest.'
        """
        settings = dict(max_length=max_length, method=method, beam_width=beam_width)
        if isinstance(query, str):
            check_query(query)
            return self.generate_batch([query], **settings)[0]
        if isinstance(query, (list, tuple)):
            return self.generate_batch(query, **settings)
        if isinstance(query, Mapping):
            return self.generate_ids(dict(query), **settings)
        ids = np.asarray(keras.ops.convert_to_numpy(query))
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise DataError(
                f"query: token ids must be an integer array (n, steps), got {ids.dtype} {ids.shape}"
            )
        if self.copy_attention:
            # Ids inside the vocabulary copy themselves; unknown words have no extended id.
            return self.generate_ids({"query": ids, "query_extended": ids}, **settings)
        return self.generate_ids(ids, **settings)


def generate_response(
    assistant: Assistant,
    query: str,
    max_length: int = 64,
    method: Literal["greedy", "beam"] = "greedy",
    beam_width: int = 4,
) -> str:
    """Answers one query.

    Args:
        assistant: A trained or loaded `Assistant`.
        query: The question; words outside the vocabulary become `<UNK>`, a query
            longer than `max_length` tokens is cut with a warning.
        max_length: Most tokens in the answer.
        method: "greedy" or "beam".
        beam_width: Beams for "beam".

    Returns:
        The answer text.

    Raises:
        DataError: the query is empty or not a string.
    """
    if not isinstance(assistant, Assistant):
        raise ModelError(
            f"generate_response needs an Assistant (train_assistant or load_assistant), "
            f"got {type(assistant).__name__}"
        )
    check_query(query)
    return assistant.generate_batch([query], max_length, method, beam_width)[0]


def generate_batch(assistant: Assistant, queries: Sequence[str], **settings) -> list[str]:
    """Answers several queries at once; see `Assistant.generate_batch`."""
    return assistant.generate_batch(queries, **settings)


def train_assistant(
    config: Union[str, os.PathLike, dict, AssistantConfig, None] = None,
    pairs: Union[Sequence[tuple[str, str]], str, os.PathLike, None] = None,
):
    """Learns the tokenizer, builds the model from `config` and trains through the shared fit.

    The pairs are shuffled (with `config.seed`) and the last `validation_split` of
    them held out: training stops when their loss has not improved for
    `early_stopping_patience` epochs, the best epoch's weights are kept (and written
    to `checkpoint_dir/best.keras` with the tokenizer when a directory is set), and
    the held-out queries are answered greedily and scored (loss, exact match, token F1)
    into `assistant.evaluation`. Teacher forcing (the decoder reads the response
    shifted by one), a loss and token accuracy that ignore `<PAD>`, and gradient
    clipping (`gradient_clip_norm`) as in the seed.

    JSON Lines data (a `.jsonl` file, a folder of them or a glob, as `pairs` or
    `config.data_path`) is streamed instead of loaded (`keras_trainer.assistant.streaming`):
    the tokenizer is learned in one pass, the last `validation_split` of the records
    in file order are held out, and batches are read as training needs them.

    Args:
        config: Path to `assistant_config.json`, a dict, or an `AssistantConfig`.
        pairs: `(query, response)` pairs, or a JSON Lines source; None reads
            `config.data_path` (or the bundled dataset's training split).

    Returns:
        `(assistant, history)`: the trained `Assistant` and the `TrainingHistory`.
    """
    from keras_trainer.assistant.evaluation import evaluate_assistant
    from keras_trainer.assistant.streaming import PairStream, is_pair_stream
    from keras_trainer.core.training import precision
    from keras_trainer.core.training.fit import fit
    from keras_trainer.core.training.seeding import set_seed

    config = load_assistant_config(config)
    training = config.to_training_config()
    source = config.data_path if pairs is None else pairs
    split = config.training.validation_split
    validation = None
    if is_pair_stream(source):
        x = PairStream(
            source, batch_size=training.batch_size, seed=config.seed, copy=config.copy_attention
        )
        if split > 0:
            x, validation = x.split(split)
        tokenizer = _learn_tokenizer(config, x.texts())
        x, y = x.with_tokenizer(tokenizer), None
        if validation is not None:
            validation = validation.with_tokenizer(tokenizer)
        held_out_pairs = list(validation.pairs()) if validation is not None else []
    else:
        if isinstance(source, (str, os.PathLike)) or source is None:
            source = load_pairs(source)
        pairs = list(source)
        if not pairs:
            raise DataError("no pairs to train on: the dataset is empty")
        # fit holds out the LAST validation_split of the rows: shuffle so it is a random part.
        order = np.random.default_rng(config.seed).permutation(len(pairs))
        pairs = [pairs[i] for i in order]
        cut = len(pairs) - int(np.floor(len(pairs) * split))  # as fit's split
        tokenizer = _learn_tokenizer(config, (text for pair in pairs[:cut] for text in pair))
        x, y = make_training_arrays(pairs, tokenizer, copy=config.copy_attention)
        held_out_pairs = pairs[cut:]
    set_seed(config.training.seed)
    with precision.policy_scope(config.training.mixed_precision):
        model = build_assistant_model(config, tokenizer.vocab_size)
    assistant = Assistant(model, tokenizer, config)

    def save_best(model_to_save, path):
        Assistant(model_to_save, tokenizer, config).save(path)

    history = fit(
        model,
        x,
        y,
        config=training,
        validation_data=validation,
        loss=assistant_loss(),
        metrics=[MaskedTokenAccuracy()],
        save_model_fn=save_best,
    )
    if held_out_pairs:
        assistant.evaluation = evaluate_assistant(assistant, held_out_pairs)
        if validation is None:  # arrays: the held-out pairs as the model reads them
            validation = make_training_arrays(held_out_pairs, tokenizer, copy=config.copy_attention)
        assistant.evaluation["loss"] = _held_out_loss(model, validation, training.batch_size)
        if config.training.verbose:
            print(
                f"held-out {len(held_out_pairs)} pairs: loss {assistant.evaluation['loss']:.4f}, "
                "exact match "
                f"{assistant.evaluation['exact_match']:.3f}, "
                f"token F1 {assistant.evaluation['token_f1']:.3f}"
            )
    return assistant, history


def _held_out_loss(model: keras.Model, data: Any, batch_size: int) -> float:
    """The training loss (masked cross-entropy) on held-out arrays `(x, y)` or a stream."""
    if isinstance(data, tuple):
        logs = model.evaluate(*data, batch_size=batch_size, verbose=0, return_dict=True)
    else:
        logs = model.evaluate(data, verbose=0, return_dict=True)
    return float(logs["loss"])


def _learn_tokenizer(config: AssistantConfig, texts) -> AssistantTokenizer:
    return AssistantTokenizer.build(
        texts,
        config.max_length,
        vocab_size=config.vocab_size,
        kind=config.tokenizer,
        min_freq=config.min_freq,
    )


def load_assistant(path: Union[str, os.PathLike]) -> Assistant:
    """Loads an assistant saved by `Assistant.save` (or a `best.keras` checkpoint).

    Returns:
        The `Assistant`, with model, tokenizer and config from the one file.

    Raises:
        CheckpointError: the file is missing, corrupt, or not an assistant model.
    """
    from keras_trainer.core.saving.persistence import load_model

    model, metadata = load_model(path)
    if metadata.get("task") != TASK or "tokenizer" not in metadata:
        raise CheckpointError(
            f"{os.fspath(path)}: not an assistant model file (metadata task="
            f"{metadata.get('task')!r}); save it with Assistant.save"
        )
    key = "tokenizer"
    try:
        tokenizer = AssistantTokenizer.from_config(metadata["tokenizer"])
        key = "config"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = load_assistant_config(metadata.get("config", {}))
    except (KerasTrainerError, TypeError, ValueError, KeyError, AttributeError) as error:
        raise CheckpointError(
            f"{os.fspath(path)}: metadata {key!r} is not a valid assistant {key} ({error})"
        ) from None
    assistant = Assistant(model, tokenizer, config)
    assistant.split = metadata.get("split")
    return assistant
