"""Copy attention: answers that must name an entity the training data never saw."""

import re

import numpy as np

from keras_trainer.assistant.config import AssistantConfig
from keras_trainer.assistant.layers import CopyGenerator
from keras_trainer.assistant.model import build_assistant_model, seed_parameter_count
from tests.assistant.conftest import FAST_CONFIG, MAX_LENGTH, to_numpy


def test_heldout_exact_match_with_copy_is_at_least_half_and_twice_without(heldout_scores):
    copy, plain = heldout_scores["copy"], heldout_scores["plain"]
    print(
        f"held-out exact match: copy {copy['exact_match']:.3f} (token F1 "
        f"{copy['token_f1']:.3f}), without {plain['exact_match']:.3f} "
        f"(token F1 {plain['token_f1']:.3f})"
    )
    # Measured with this config over 6 seeds (jax, torch) on another host: 0.50-0.70,
    # and 0.28-0.68 on CI-kind hosts whose float rounding differs; the model without
    # copy attention scores 0.00 (its vocabulary has no unseen name). A fifth keeps a
    # margin below every run seen and stays far above what the plain model can do.
    assert copy["exact_match"] >= 0.2
    assert copy["exact_match"] >= 2 * plain["exact_match"]


def test_heldout_entities_never_occur_in_training(bundled_pairs, heldout_pairs, trained_assistant):
    # The answer's name can only come from the query: it is no token of the vocabulary
    # and no training pair mentions it (other out-of-vocabulary words may be rare ones).
    query, response = heldout_pairs[0]
    entity = "Smalltalk"
    assert entity in query and entity in response
    _, _, oovs = trained_assistant.tokenizer.encode_query(query)
    assert entity in [oov.strip() for oov in oovs]
    assert all(entity not in q + r for q, r in bundled_pairs)


def _unseen_names(assistant, query, response):
    """The query's out-of-vocabulary words that the reference answer repeats."""
    _, _, oovs = assistant.tokenizer.encode_query(query)
    return [word for word in (oov.strip() for oov in oovs) if word and word in response]


def _sampled(heldout_pairs):
    """Eight held-out pairs spread over the split."""
    return heldout_pairs[::13][:8]


def test_beam_search_copies_unseen_entities(trained_assistant, heldout_pairs):
    pairs = _sampled(heldout_pairs)
    names = [_unseen_names(trained_assistant, q, r) for q, r in pairs]
    assert all(names), "every sampled pair names an entity the vocabulary lacks"
    answers = trained_assistant.generate_batch(
        [q for q, _ in pairs], max_length=MAX_LENGTH, method="beam", beam_width=3
    )
    copied = np.mean([all(n in a for n in ns) for a, ns in zip(answers, names)])
    exact = np.mean([a == r for a, (_, r) in zip(answers, pairs)])
    print(f"beam on {len(pairs)} held-out pairs: names copied {copied:.3f}, exact {exact:.3f}")
    # Whole answers match in 0.25-1.0 of these pairs across seeds and hosts (8 pairs are
    # few); the names alone, the behaviour under test, are copied far more steadily.
    # Without copy attention no answer can contain them.
    assert copied >= 0.5


def test_without_copy_attention_the_model_is_the_seeds(trained_plain):
    vocab = trained_plain.tokenizer.vocab_size
    expected = seed_parameter_count(vocab, FAST_CONFIG["embedding_dim"], FAST_CONFIG["hidden_dim"])
    assert trained_plain.model.count_params() == expected
    assert not trained_plain.copy_attention


def test_copy_attention_adds_only_the_gate():
    config = AssistantConfig(embedding_dim=6, hidden_dim=5, max_length=8)
    plain = build_assistant_model(
        AssistantConfig(**{**config.__dict__, "copy_attention": False}), 20
    )
    copy = build_assistant_model(config, 20)
    # p_gen reads [context (2h); decoder output (2h); input embedding (e)]: 4h + e + 1.
    assert copy.count_params() - plain.count_params() == 4 * 5 + 6 + 1
    assert copy.output_shape == (None, None, 20 + 8)


def test_copy_distribution_puts_attention_on_extended_ids():
    layer = CopyGenerator(vocab_size=5, extension=3)
    logits = np.zeros((1, 5), "float32")
    weights = np.array([[0.7, 0.2, 0.1]], "float32")
    features = [np.zeros((1, 2), "float32")] * 3
    source = np.array([[6, 4, 6]], "int32")  # position 0 and 2: extended id 6 (a copied word)
    layer.build(logits.shape, weights.shape, (1, 2), (1, 2), (1, 2), source.shape)
    layer.bias.assign(np.array([-30.0], "float32"))  # p_gen ~ 0: copy only
    probs = np.exp(to_numpy([layer(logits, weights, *features, source)])[0])
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs[0, [4, 6]], [0.2, 0.8], atol=1e-5)


def test_answers_restore_case_and_spacing_of_copied_words(trained_assistant, heldout_pairs):
    # Each unseen name of a query that its greedy answer repeats (as a word, in any
    # case) is the query's word, capitals and all, spaced as a word of its own. Which
    # answers repeat their name varies with the host's float rounding (on one CPU the
    # torch run garbled two answers that other hosts get right); half of them is steady.
    pairs = _sampled(heldout_pairs)
    answers = trained_assistant.generate_batch([q for q, _ in pairs], max_length=MAX_LENGTH)
    copied = 0
    for (query, response), answer in zip(pairs, answers):
        assert answer == answer.strip() and "  " not in answer, answer
        for name in _unseen_names(trained_assistant, query, response):
            word = rf"(?<!\w){re.escape(name)}(?!\w)"
            if re.search(word, answer, re.IGNORECASE):
                assert re.search(word, answer), answer
                copied += 1
    assert copied >= len(pairs) // 2, answers
