import numpy as np
import pytest

from keras_trainer.assistant.assistant import generate_response, load_assistant
from keras_trainer.assistant.config import load_assistant_config
from keras_trainer.errors import CheckpointError, DataError, ModelError
from tests.assistant.conftest import MAX_LENGTH, to_numpy


def test_greedy_answers_reproduce_training_responses(trained, greedy_ids, training_sample):
    assistant, history = trained
    _, oovs = assistant.encode_queries([q for q, _ in training_sample], with_oovs=True)
    answers = [assistant.tokenizer.decode(row, o) for row, o in zip(greedy_ids, oovs)]
    exact = np.mean([a == r for a, (_, r) in zip(answers, training_sample)])
    print(f"exact match {exact:.3f}, final loss {history.history['loss'][-1]:.4f}")
    # 0.66-0.89 over 6 seeds (jax, torch) on one host, 0.31 on a CI-kind host with other
    # float rounding; an untrained decoder reproduces none of these entity answers.
    assert exact >= 0.25


def test_training_reports_exact_match_and_token_f1_on_the_held_out_part(trained, bundled_pairs):
    assistant, history = trained
    assert "val_loss" in history.history
    assert assistant.evaluation["pairs"] == int(len(bundled_pairs) * 0.1)
    assert 0.0 <= assistant.evaluation["exact_match"] <= assistant.evaluation["token_f1"] <= 1.0


def test_training_reports_the_held_out_loss_of_the_kept_weights(trained):
    assistant, history = trained
    # The assistant keeps its best epoch's weights; the held-out pairs are fit's validation rows.
    assert assistant.evaluation["loss"] == pytest.approx(min(history.history["val_loss"]), rel=1e-3)


def test_generate_batch_decodes_compiled_ids(trained_assistant, greedy_ids, training_sample):
    queries = [q for q, _ in training_sample]
    _, oovs = trained_assistant.encode_queries(queries, with_oovs=True)
    answers = trained_assistant.generate_batch(queries, max_length=MAX_LENGTH)
    assert answers == [trained_assistant.tokenizer.decode(r, o) for r, o in zip(greedy_ids, oovs)]


def test_generate_batch_in_padded_batches_gives_the_same_answers(trained_assistant, bundled_pairs):
    queries = [q for q, _ in bundled_pairs[:10]]
    assert trained_assistant.generate_batch(queries, max_length=MAX_LENGTH, batch_size=4) == (
        trained_assistant.generate_batch(queries, max_length=MAX_LENGTH)
    )


def test_save_and_load_keep_tokenizer_and_weights(trained_assistant, query_inputs, tmp_path):
    path = trained_assistant.save(tmp_path / "assistant.keras")
    loaded = load_assistant(path)
    assert loaded.tokenizer.get_config() == trained_assistant.tokenizer.get_config()
    assert loaded.config == trained_assistant.config
    x = {name: array[:4] for name, array in query_inputs.items()}
    x["response_in"] = query_inputs["query"][4:8]
    np.testing.assert_allclose(*to_numpy([loaded.model(x), trained_assistant.model(x)]), atol=1e-5)


@pytest.mark.parametrize("query", ["", "   ", None, 3])
def test_empty_or_non_string_query_is_a_data_error(trained_assistant, query):
    with pytest.raises(DataError, match="query"):
        generate_response(trained_assistant, query)


def test_generate_response_needs_an_assistant(trained_assistant):
    with pytest.raises(ModelError, match="Assistant"):
        generate_response(trained_assistant.model, "what is keras?")


def test_long_query_is_cut_with_warning(trained_assistant):
    with pytest.warns(UserWarning, match="cut"):
        inputs = trained_assistant.encode_queries(["what " * 60])
    assert inputs["query"].shape == (1, trained_assistant.tokenizer.max_length)


def test_generator_is_compiled_once_per_setting(trained_assistant):
    greedy = trained_assistant.generator("greedy", MAX_LENGTH)
    assert trained_assistant.generator("greedy", MAX_LENGTH) is greedy
    assert trained_assistant.generator("greedy", 12) is not greedy


def test_load_rejects_non_assistant_file(tmp_path):
    import keras

    from keras_trainer.core.saving.persistence import save_model

    inputs = keras.Input((4,))
    classifier = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    path = save_model(classifier, tmp_path / "classifier.keras", metadata={"task": "tabular"})
    with pytest.raises(
        CheckpointError,
        match=r"classifier.keras: not an assistant model file \(metadata task='tabular'\)",
    ):
        load_assistant(path)


def test_load_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(CheckpointError, match="missing.keras"):
        load_assistant(tmp_path / "missing.keras")


@pytest.mark.one_backend
@pytest.mark.parametrize("name", ["assistant_config.json", "assistant_full.json"])
def test_shipped_configs_train_with_early_stopping_and_copy_attention(name):
    config = load_assistant_config(f"config/{name}")
    assert config.copy_attention and config.tokenizer == "subword"
    assert config.training.validation_split > 0 and config.training.early_stopping_patience > 0
    assert config.training.epochs > 1


@pytest.mark.one_backend
def test_full_size_config_is_the_default_and_the_cpu_config_is_smaller():
    full = load_assistant_config("config/assistant_full.json")
    assert (full.embedding_dim, full.hidden_dim, full.max_length) == (128, 256, 64)
    assert load_assistant_config(None) == full
    cpu = load_assistant_config("config/assistant_config.json")
    # The README's command trains this one in under 3 minutes on 2 cores
    # (benchmarks/assistant_readme.py); the answers still need the full max_length.
    assert cpu.hidden_dim < full.hidden_dim and cpu.max_length == full.max_length


def test_generate_takes_a_query_or_its_token_ids(trained_assistant, query_inputs, greedy_ids):
    # The assistant document's `model.generate(query, max_length)`.
    query = "How do I upgrade pytest?"
    assert (
        trained_assistant.generate(query, MAX_LENGTH)
        == trained_assistant.generate_batch([query], max_length=MAX_LENGTH)[0]
    )
    # The document's query tensor: the tokenized queries (copy ids included).
    np.testing.assert_array_equal(trained_assistant.generate(query_inputs, MAX_LENGTH), greedy_ids)


def test_mixed_float16_trains_the_assistant_with_loss_scaling():
    import keras

    from keras_trainer.assistant.assistant import train_assistant

    pairs = [("what is a b", "a b is c"), ("who is y", "y is z")] * 4
    training = {"epochs": 1, "batch_size": 8, "validation_split": 0.0, "verbose": 0}
    training.update(mixed_precision="float16", early_stopping_patience=0)
    config = {"embedding_dim": 4, "hidden_dim": 4, "max_length": 6, "training": training}
    assistant, history = train_assistant(config, pairs)
    assert assistant.model.get_layer("decoder").compute_dtype == "float16"
    assert isinstance(assistant.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.isfinite(history.history["loss"]).all()
