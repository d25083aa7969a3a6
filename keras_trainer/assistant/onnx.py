"""The assistant in ONNX: export its encoder and decoder step, generate with ONNX Runtime.

`export_assistant_onnx` writes two files with a dynamic batch dimension, in ONE
TensorFlow-backend conversion subprocess (whatever backend trained the model):

- `encoder.onnx`: `query (batch, L) int32 -> [encoder_outputs, h_1, c_1, h_2, c_2]`;
- `decoder_step.onnx`: `[token (batch, 1), query, encoder_outputs, h_1, c_1, h_2, c_2]
  -> [logits (batch, vocab), h_1, c_1, h_2, c_2]`.

Both carry the vocabulary, the tokenizer settings, the config and the sizes in
their ONNX `metadata_props`, so the directory is self-contained. `OnnxAssistant`
loads it and decodes greedily in NumPy: the encoder runs once per batch and the
decoder step runs in a loop with its LSTM states fed back, exactly the steps of
the Keras `GreedyGenerator` (`<PAD>` and `<SOS>` are never generated; a row that
produced `<EOS>` is padded). Loading needs only `onnxruntime`, not Keras.

Example:

>>> paths = export_assistant_onnx(assistant, "models/assistant_onnx")  # doctest: +SKIP
>>> bot = OnnxAssistant.load("models/assistant_onnx")  # doctest: +SKIP
>>> bot.generate_response("What is keras_trainer?")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from keras_trainer.assistant.data import encode_queries
from keras_trainer.assistant.generation import check_query
from keras_trainer.assistant.tokenizer import EOS_ID, PAD_ID, SOS_ID, AssistantTokenizer
from keras_trainer.errors import (
    ConfigError,
    DataError,
    ExportError,
    InferenceError,
    ModelError,
    QuantizationError,
)
from keras_trainer.export.runtime import ort_session

ENCODER_FILE = "encoder.onnx"
DECODER_STEP_FILE = "decoder_step.onnx"
TASK = "assistant_onnx"
_NEG_INF = -1e9


def export_assistant_onnx(
    assistant,
    directory: Union[str, os.PathLike],
    *,
    opset: int | None = None,
    quantize: Optional[str] = None,
) -> dict[str, str]:
    """Exports an assistant's encoder and decoder step to ONNX, with its vocabulary.

    Args:
        assistant: A trained or loaded `Assistant`.
        directory: Folder for `encoder.onnx` and `decoder_step.onnx` (created if
            missing; existing files are replaced atomically).
        opset: ONNX opset; the export default (17) when None.
        quantize: "dynamic" writes both parts with int8 weights
            (`keras_trainer.export.quantize_onnx`); None keeps float32. Static
            quantization does not apply: the inputs are token ids and recurrent
            states, not rows of training data to calibrate on.

    Returns:
        `{"encoder": path, "decoder_step": path}`.

    Raises:
        ModelError: `assistant` is not an `Assistant`.
        ExportError: the conversion fails.
        QuantizationError: `quantize` is not None or "dynamic" (raised before
            anything is written).

    Example:

    >>> export_assistant_onnx(assistant, "onnx_dir")  # doctest: +SKIP
    {'encoder': '/.../onnx_dir/encoder.onnx', 'decoder_step': '/.../onnx_dir/decoder_step.onnx'}
    """
    from keras_trainer.assistant.assistant import Assistant
    from keras_trainer.assistant.config import config_to_dict
    from keras_trainer.assistant.model import build_decoder_step_model, build_encoder_model
    from keras_trainer.export import ExportRequest, export_onnx_many

    if not isinstance(assistant, Assistant):
        raise ModelError(
            f"export_assistant_onnx needs an Assistant (train_assistant or load_assistant), "
            f"got {type(assistant).__name__}"
        )
    if quantize not in (None, "dynamic"):
        raise QuantizationError(
            f"quantize: the assistant quantizes in 'dynamic' mode only (its inputs are token ids "
            f"and recurrent states, nothing to calibrate 'static' scales on); got {quantize!r}"
        )
    directory = _export_directory(directory)
    model = assistant.model
    sizes = _sizes(assistant)
    shared = {
        "task": TASK,
        "tokenizer": assistant.tokenizer.get_config(),
        "config": config_to_dict(assistant.config),
        "sizes": sizes,
    }
    paths = {
        "encoder": os.path.join(directory, ENCODER_FILE),
        "decoder_step": os.path.join(directory, DECODER_STEP_FILE),
    }
    # Queries are always encoded to exactly `max_length` ids (`encode_queries`), so
    # the time axis is fixed; only the batch is dynamic. TensorFlow's scan (the
    # encoder's recurrence) cannot be traced over an unknown time length anyway.
    length = assistant.tokenizer.max_length
    query_spec = ("query", [None, length], "int32")
    state_specs = [
        (f"{kind}_{i + 1}", [None, sizes["decoder_units"]], "float32")
        for i in range(sizes["num_layers"])
        for kind in ("h", "c")
    ]
    requests = [
        ExportRequest(
            build_encoder_model(model),
            paths["encoder"],
            input_signature=[query_spec],
            metadata={**shared, "part": "encoder"},
        ),
        ExportRequest(
            build_decoder_step_model(model),
            paths["decoder_step"],
            input_signature=[
                ("token", [None, 1], "int32"),
                query_spec,
                *([("query_extended", [None, length], "int32")] if sizes["copy_attention"] else []),
                ("encoder_outputs", [None, length, 2 * sizes["encoder_units"]], "float32"),
                *state_specs,
            ],
            metadata={**shared, "part": "decoder_step"},
        ),
    ]
    export_onnx_many(requests, opset=opset)
    if quantize is not None:
        from keras_trainer.export.quantization import quantize_onnx

        for path in paths.values():
            quantize_onnx(path, path, quantize)
    return paths


def _export_directory(directory: Union[str, os.PathLike]) -> str:
    """The absolute export folder, created if missing."""
    directory = os.path.abspath(os.fspath(directory))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create the export directory {directory!r}: {error}") from None
    return directory


def _sizes(assistant) -> dict:
    """The network sizes a runtime needs to feed the exported parts (saved in their metadata)."""
    model = assistant.model
    decoder = model.get_layer("decoder")
    return {
        "vocab_size": assistant.tokenizer.vocab_size,
        "embedding_dim": int(model.get_layer("embedding").output_dim),
        "encoder_units": int(model.get_layer("encoder").units),
        "decoder_units": int(decoder.units),
        "num_layers": int(decoder.num_layers),
        "copy_attention": assistant.copy_attention,
    }


def _session(path: str):
    # Small per-step matmuls: one thread avoids spin-waiting on shared cores.
    return ort_session(path, intra_op_num_threads=1)


def _metadata(session) -> dict[str, Any]:
    from keras_trainer.export.metadata import decode_metadata_props

    return decode_metadata_props(dict(session.get_modelmeta().custom_metadata_map))


class OnnxAssistant:
    """Greedy answers from an exported assistant, through ONNX Runtime.

    Args:
        encoder: ONNX Runtime session of `encoder.onnx`.
        decoder_step: ONNX Runtime session of `decoder_step.onnx`.
        tokenizer: The tokenizer the model was trained with.
        metadata: The export metadata (`config`, `sizes`, ...).

    Use `OnnxAssistant.load(directory)` rather than the constructor.
    """

    def __init__(self, encoder, decoder_step, tokenizer: AssistantTokenizer, metadata: dict):
        self.encoder = encoder
        self.decoder_step = decoder_step
        self.tokenizer = tokenizer
        self.metadata = metadata
        self._encoder_input = encoder.get_inputs()[0].name
        self._step_inputs = [i.name for i in decoder_step.get_inputs()]
        self._step_outputs = [o.name for o in decoder_step.get_outputs()]
        states = 2 * int(metadata["sizes"]["num_layers"])
        self.copy_attention = bool(metadata["sizes"].get("copy_attention", False))
        inputs = 3 + states + self.copy_attention
        if len(self._step_inputs) != inputs or len(self._step_outputs) != 1 + states:
            raise InferenceError(
                f"decoder_step.onnx has {len(self._step_inputs)} inputs and "
                f"{len(self._step_outputs)} outputs; expected {inputs} and {1 + states}"
            )

    @classmethod
    def load(cls, directory: Union[str, os.PathLike]) -> OnnxAssistant:
        """Loads a directory written by `export_assistant_onnx`.

        Raises:
            InferenceError: the directory or a file is missing, not ONNX, or not
                an assistant export, or the two files come from different exports.
        """
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise InferenceError(
                f"assistant ONNX directory not found: {directory!r} "
                f"(write it with export_assistant_onnx)"
            )
        sessions, metadata = {}, {}
        for part, name in (("encoder", ENCODER_FILE), ("decoder_step", DECODER_STEP_FILE)):
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                raise InferenceError(
                    f"{directory!r} has no {name} (write it with export_assistant_onnx)"
                )
            sessions[part] = _session(path)
            metadata[part] = _metadata(sessions[part])
            if metadata[part].get("task") != TASK or metadata[part].get("part") != part:
                raise InferenceError(
                    f"{path!r} is not an assistant {part} export (metadata task="
                    f"{metadata[part].get('task')!r}, part={metadata[part].get('part')!r})"
                )
        encoder_meta, step_meta = metadata["encoder"], metadata["decoder_step"]
        for key in ("tokenizer", "sizes"):
            if encoder_meta.get(key) != step_meta.get(key):
                raise InferenceError(
                    f"{ENCODER_FILE} and {DECODER_STEP_FILE} in {directory!r} disagree on "
                    f"{key!r}: they come from different exports"
                )
        try:
            tokenizer = AssistantTokenizer.from_config(encoder_meta["tokenizer"])
        except (DataError, KeyError) as error:
            raise InferenceError(f"{directory!r}: bad tokenizer metadata: {error}") from None
        return cls(sessions["encoder"], sessions["decoder_step"], tokenizer, encoder_meta)

    def encode_queries(self, queries: Sequence[str], with_oovs: bool = False):
        """Validates and encodes queries as `Assistant.encode_queries` does.

        Returns:
            `{"query": (n, max_length)[, "query_extended"]}`, or `(inputs, oovs)`.
        """
        for index, query in enumerate(queries):
            check_query(query, index if len(queries) > 1 else None)
        inputs, oovs = encode_queries(self.tokenizer, list(queries), self.copy_attention, warn=True)
        return (inputs, oovs) if with_oovs else inputs

    def encode(self, query_ids: np.ndarray) -> list[np.ndarray]:
        """Runs the encoder: `[encoder_outputs, h_1, c_1, h_2, c_2]`."""
        return self.encoder.run(None, {self._encoder_input: np.asarray(query_ids, dtype="int32")})

    def step(
        self,
        tokens: np.ndarray,
        query_ids: np.ndarray,
        encoder_outputs: np.ndarray,
        states: Sequence[np.ndarray],
        query_extended: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """Runs one decoder step: `tokens (batch, 1) -> [logits (batch, vocab), *new_states]`.

        With copy attention `query_extended` (default: `query_ids`) gives the ids
        copying each query position produces, and the logits are log-probabilities
        over the extended vocabulary.
        """
        sources = [np.asarray(query_ids, dtype="int32")]
        if self.copy_attention:
            extended = query_ids if query_extended is None else query_extended
            sources.append(np.asarray(extended, dtype="int32"))
        arrays = [np.asarray(tokens, dtype="int32"), *sources, encoder_outputs, *states]
        return self.decoder_step.run(self._step_outputs, dict(zip(self._step_inputs, arrays)))

    def generate_ids(self, inputs, max_length: int = 64) -> np.ndarray:
        """Greedy decoding of encoded queries.

        Args:
            inputs: `encode_queries`' dict, or `(batch, L)` int32 query ids.
            max_length: Tokens to generate at most.

        Returns:
            `(batch, max_length)` int32 tokens, `<PAD>` after `<EOS>`.
        """
        if not isinstance(max_length, int) or max_length < 1:
            raise ConfigError(f"max_length: must be a positive integer, got {max_length!r}")
        if isinstance(inputs, dict):
            query_ids, extended = inputs["query"], inputs.get("query_extended")
        else:
            query_ids, extended = inputs, None
        query_ids = np.asarray(query_ids, dtype="int32")
        if query_ids.ndim != 2:
            raise DataError(f"query_ids must be (batch, length), got shape {query_ids.shape}")
        encoder_outputs, *states = self.encode(query_ids)
        batch = query_ids.shape[0]
        tokens = np.zeros((batch, max_length), dtype="int32")
        previous = np.full((batch, 1), SOS_ID, dtype="int32")
        done = np.zeros(batch, dtype=bool)
        for i in range(max_length):
            logits, *states = self.step(previous, query_ids, encoder_outputs, states, extended)
            logits[:, [PAD_ID, SOS_ID]] = _NEG_INF  # As in GreedyGenerator: never generated.
            chosen = np.where(done, PAD_ID, logits.argmax(-1)).astype("int32")
            tokens[:, i] = chosen
            done |= chosen == EOS_ID
            if done.all():
                break
            previous = chosen[:, None]
        return tokens

    def generate_batch(self, queries: Sequence[str], max_length: int = 64) -> list[str]:
        """Answers several queries in one batch (greedy).

        Raises:
            DataError: `queries` is not a list of strings, or one is empty.
        """
        if isinstance(queries, str) or not isinstance(queries, Sequence):
            raise DataError(f"queries must be a list of strings, got {type(queries).__name__}")
        if not queries:
            return []
        inputs, oovs = self.encode_queries(queries, with_oovs=True)
        ids = self.generate_ids(inputs, max_length=max_length)
        return [self.tokenizer.decode(row, row_oovs) for row, row_oovs in zip(ids, oovs)]

    def generate_response(self, query: str, max_length: int = 64) -> str:
        """Answers one query (greedy); a query over `max_length` tokens is cut with a warning.

        Raises:
            DataError: the query is empty or not a string.
        """
        check_query(query)
        return self.generate_batch([query], max_length)[0]
