"""How good the assistant's answers are: exact match and token F1 against references.

Exact match is the core's one definition (`keras_trainer.core.evaluating.text`):
byte for byte by default (the tokenizer keeps case, spacing and punctuation, so a
perfect answer is equal); `tokenizer_normalized(tokenizer)` is the named variant
that compares both sides as the tokenizer reads them.
Token F1 is the harmonic mean of precision and recall of the answer's words and
punctuation marks (as `pre_tokenize` cuts them, case kept) against the
reference's, counted with multiplicity, averaged over the pairs.

Example:

>>> exact_match(["Run pip show NumPy."], ["Run pip show NumPy."])
1.0
>>> round(token_f1(["Run pip show numpy."], ["Run pip show NumPy."]), 2)
0.8
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Literal

from keras_trainer.assistant.tokenizer import pre_tokenize
from keras_trainer.core.evaluating.text import (
    Normalizer,
    check_pairs,
    exact_match,
    named_normalizer,
)
from keras_trainer.errors import DataError

__all__ = ["evaluate_assistant", "exact_match", "token_f1", "tokenizer_normalized"]

#: The name of the exact-match variant that compares answers as the tokenizer reads them.
TOKENIZER_NORMALIZED = "tokenizer-normalized"


def _words(text: str) -> list[str]:
    return [word.strip() for word in pre_tokenize(text) if word.strip()]


def tokenizer_normalized(tokenizer) -> Normalizer:
    """The exact-match variant that reads both sides as `tokenizer` does
    (`decode(encode(text))`, spacing squeezed): words outside its vocabulary count."""
    return named_normalizer(
        TOKENIZER_NORMALIZED,
        lambda text: " ".join(tokenizer.decode(tokenizer.encode(text)).split()),
    )


def token_f1(answers: Sequence[str], references: Sequence[str]) -> float:
    """Mean word-level F1 of the answers against their references."""
    check_pairs(answers, references)
    total = 0.0
    for answer, reference in zip(answers, references):
        a, r = collections.Counter(_words(answer)), collections.Counter(_words(reference))
        common = sum((a & r).values())
        if common:
            precision, recall = common / sum(a.values()), common / sum(r.values())
            total += 2 * precision * recall / (precision + recall)
    return total / len(references)


def evaluate_assistant(
    assistant,
    pairs: Sequence[tuple[str, str]],
    method: Literal["greedy", "beam"] = "greedy",
    beam_width: int = 4,
    batch_size: int = 64,
) -> dict[str, float]:
    """Answers every query of `pairs` and scores the answers against the responses.

    Args:
        assistant: A trained or loaded `Assistant`.
        pairs: `(query, reference response)` pairs.
        method: "greedy" or "beam".
        beam_width: Beams for "beam".
        batch_size: Queries per generation batch.

    Returns:
        `{"exact_match": ..., "token_f1": ..., "pairs": n}`.
    """
    pairs = list(pairs)
    if not pairs:
        raise DataError("no pairs to evaluate")
    answers = assistant.generate_batch(
        [q for q, _ in pairs],
        max_length=assistant.tokenizer.max_length,
        method=method,
        beam_width=beam_width,
        batch_size=batch_size,
    )
    references = [r for _, r in pairs]
    return {
        "exact_match": exact_match(answers, references),
        "token_f1": token_f1(answers, references),
        "pairs": len(pairs),
    }
