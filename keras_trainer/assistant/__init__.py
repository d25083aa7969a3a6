"""keras_trainer.assistant: a seq2seq question-answering model in Keras 3.

A bidirectional-LSTM encoder, additive attention and an LSTM decoder (without copy
attention: the seed's PyTorch model, parameter for parameter), with copy attention
for words of the question outside the vocabulary, a case-preserving subword
tokenizer, trained through the shared `fit` with early stopping; answers are
decoded greedily or by beam search inside one compiled loop.

Example:

>>> from keras_trainer.assistant import train_assistant, generate_response
>>> assistant, history = train_assistant("config/assistant_config.json")
>>> generate_response(assistant, "How do I install Loguru?")
"""

from keras_trainer.registry import lazy_exports

# Names are imported on first use: `keras-trainer --help` imports this package's `cli`
# module (the `chat` verb), which must not pull in Keras.
_EXPORTS = {
    "Assistant": "keras_trainer.assistant.assistant",
    "generate_batch": "keras_trainer.assistant.assistant",
    "generate_response": "keras_trainer.assistant.assistant",
    "load_assistant": "keras_trainer.assistant.assistant",
    "train_assistant": "keras_trainer.assistant.assistant",
    "AssistantConfig": "keras_trainer.assistant.config",
    "load_assistant_config": "keras_trainer.assistant.config",
    "load_pairs": "keras_trainer.assistant.data",
    "evaluate_assistant": "keras_trainer.assistant.evaluation",
    "exact_match": "keras_trainer.assistant.evaluation",
    "token_f1": "keras_trainer.assistant.evaluation",
    "CopyGenerator": "keras_trainer.assistant.layers",
    "BeamSearchGenerator": "keras_trainer.assistant.generation",
    "GreedyGenerator": "keras_trainer.assistant.generation",
    "build_assistant_model": "keras_trainer.assistant.model",
    "build_decoder_step_model": "keras_trainer.assistant.model",
    "build_encoder_model": "keras_trainer.assistant.model",
    "OnnxAssistant": "keras_trainer.assistant.onnx",
    "export_assistant_onnx": "keras_trainer.assistant.onnx",
    "AssistantTokenizer": "keras_trainer.assistant.tokenizer",
}

__all__ = [
    "Assistant",
    "AssistantConfig",
    "AssistantTokenizer",
    "BeamSearchGenerator",
    "CopyGenerator",
    "GreedyGenerator",
    "OnnxAssistant",
    "build_assistant_model",
    "build_decoder_step_model",
    "build_encoder_model",
    "evaluate_assistant",
    "exact_match",
    "export_assistant_onnx",
    "generate_batch",
    "generate_response",
    "load_assistant",
    "load_assistant_config",
    "load_pairs",
    "token_f1",
    "train_assistant",
]


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
