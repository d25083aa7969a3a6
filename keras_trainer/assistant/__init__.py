"""keras_trainer.assistant: the seq2seq question-answering model in Keras 3.

A bidirectional-LSTM encoder, additive attention and an LSTM decoder with the same
parameter count as the seed's PyTorch model, trained through the shared `fit`;
answers are decoded greedily or by beam search inside one compiled loop.

Example:

>>> from keras_trainer.assistant import train_assistant, generate_response
>>> assistant = train_assistant("config/assistant_config.json")
>>> generate_response(assistant, "What is keras_trainer?")
"""

from keras_trainer.assistant.assistant import (
    Assistant,
    generate_batch,
    generate_response,
    load_assistant,
    train_assistant,
)
from keras_trainer.assistant.config import AssistantConfig, load_assistant_config
from keras_trainer.assistant.data import load_pairs
from keras_trainer.assistant.generation import BeamSearchGenerator, GreedyGenerator
from keras_trainer.assistant.model import (
    build_assistant_model,
    build_decoder_step_model,
    build_encoder_model,
)
from keras_trainer.assistant.onnx import OnnxAssistant, export_assistant_onnx
from keras_trainer.assistant.tokenizer import AssistantTokenizer

__all__ = [
    "Assistant",
    "AssistantConfig",
    "AssistantTokenizer",
    "BeamSearchGenerator",
    "GreedyGenerator",
    "OnnxAssistant",
    "build_assistant_model",
    "build_decoder_step_model",
    "build_encoder_model",
    "export_assistant_onnx",
    "generate_batch",
    "generate_response",
    "load_assistant",
    "load_assistant_config",
    "load_pairs",
    "train_assistant",
]
