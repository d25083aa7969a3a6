"""Generated text against reference text: exact match, in named variants.

One definition of exact match serves every family: `exact_match(answers,
references)` counts an answer right when it equals its reference byte for byte
(`BYTE_FOR_BYTE`); `normalize=` names another variant, a function applied to both
sides first (the assistant's `tokenizer_normalized`, for which case or spacing
the tokenizer does not keep do not count). Reports and the command line print the
variant's name next to the number, so two numbers called "exact match" never
mean two things.

Example:

>>> exact_match(["Run pip show NumPy."], ["Run pip show NumPy."])
1.0
>>> squeeze = named_normalizer("spacing ignored", lambda text: " ".join(text.split()))
>>> exact_match(["Run  pip show NumPy."], ["Run pip show NumPy."], normalize=squeeze)
1.0
>>> variant_name(squeeze)
'spacing ignored'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

from keras_trainer.errors import DataError

#: The name of the default variant: the answer equals its reference, byte for byte.
BYTE_FOR_BYTE = "byte for byte"

Normalizer = Callable[[str], str]


def named_normalizer(name: str, function: Normalizer) -> Normalizer:
    """`function` as an exact-match variant called `name` (what reports print)."""

    def normalize(text: str) -> str:
        return function(text)

    normalize.variant = name  # type: ignore[attr-defined]
    return normalize


def variant_name(normalize: Optional[Normalizer] = None) -> str:
    """The printed name of an exact-match variant (`BYTE_FOR_BYTE` for None)."""
    if normalize is None:
        return BYTE_FOR_BYTE
    return getattr(normalize, "variant", getattr(normalize, "__name__", "normalized"))


def check_pairs(answers: Sequence[str], references: Sequence[str]) -> None:
    """Raises `DataError` unless there are as many answers as references, and some."""
    if len(answers) != len(references):
        raise DataError(f"{len(answers)} answers for {len(references)} references")
    if not references:
        raise DataError("no references to score against")


def exact_matches(
    answers: Sequence[str], references: Sequence[str], normalize: Optional[Normalizer] = None
) -> list[bool]:
    """Whether each answer equals its reference (after `normalize` on both, when given)."""
    check_pairs(answers, references)
    if normalize is None:
        return [a == r for a, r in zip(answers, references)]
    return [normalize(a) == normalize(r) for a, r in zip(answers, references)]


def exact_match(
    answers: Sequence[str], references: Sequence[str], normalize: Optional[Normalizer] = None
) -> float:
    """Share of answers equal to their reference.

    Args:
        answers: The generated texts.
        references: The expected texts, one per answer.
        normalize: None compares byte for byte (`BYTE_FOR_BYTE`); a function
            (best made by `named_normalizer`) is applied to both sides first.

    Raises:
        DataError: the lengths differ, or there is nothing to score.
    """
    matches = exact_matches(answers, references, normalize)
    return sum(matches) / len(matches)
