"""Word-level tokenizer and vocabulary of the assistant.

Text is lower-cased and split into words (dots, apostrophes, hyphens and slashes
inside a word keep it whole: `keras_trainer.config`, `don't`) and single
punctuation marks. Ids 0-3 are the special tokens `<PAD>`, `<UNK>`, `<SOS>` and
`<EOS>`; words seen fewer than `min_freq` times map to `<UNK>`.

Example:

>>> tokenizer = AssistantTokenizer.build(["How do I train?"], max_length=8)
>>> tokenizer.encode("how do I fly?")
[4, 5, 6, 1, 8, 3]
>>> tokenizer.decode([4, 5, 6, 8, 3])
'how do i?'
"""

from __future__ import annotations

import collections
import re
import warnings
from typing import Iterable, Sequence

from keras_trainer.errors import DataError

PAD, UNK, SOS, EOS = "<PAD>", "<UNK>", "<SOS>", "<EOS>"
SPECIAL_TOKENS = (PAD, UNK, SOS, EOS)
PAD_ID, UNK_ID, SOS_ID, EOS_ID = 0, 1, 2, 3

_TOKEN = re.compile(r"\w+(?:[.'\-/]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:)\]])")
_NO_SPACE_AFTER = re.compile(r"([(\[]) ")


def split_words(text: str) -> list[str]:
    """Splits `text` into lower-cased words and punctuation marks."""
    return _TOKEN.findall(text.lower())


def join_words(words: Iterable[str]) -> str:
    """Joins words back into text, with no space before closing punctuation."""
    text = " ".join(words)
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    return _NO_SPACE_AFTER.sub(r"\1", text)


def normalize_text(text: str) -> str:
    """The form a perfect answer is generated in: `join_words(split_words(text))`."""
    return join_words(split_words(text))


class AssistantTokenizer:
    """Maps text to token ids and back, with a fixed vocabulary.

    Args:
        vocabulary: All tokens, index = id; must start with the 4 special tokens.
        max_length: Most ids per encoded text, `<EOS>` included.
        min_freq: The minimum word frequency the vocabulary was built with (kept
            for the record).
    """

    def __init__(self, vocabulary: Sequence[str], max_length: int = 64, min_freq: int = 1):
        vocabulary = list(vocabulary)
        if tuple(vocabulary[:4]) != SPECIAL_TOKENS:
            raise DataError(
                f"vocabulary must start with {list(SPECIAL_TOKENS)}, got {vocabulary[:4]}"
            )
        if len(set(vocabulary)) != len(vocabulary):
            raise DataError("vocabulary has duplicate tokens")
        if max_length < 2:
            raise DataError(f"max_length must be at least 2, got {max_length}")
        self.vocabulary = vocabulary
        self.max_length = int(max_length)
        self.min_freq = int(min_freq)
        self._ids = {token: index for index, token in enumerate(vocabulary)}

    @classmethod
    def build(
        cls, texts: Iterable[str], max_length: int = 64, min_freq: int = 1
    ) -> "AssistantTokenizer":
        """Builds the vocabulary from `texts`, most frequent words first.

        Args:
            texts: Every query and response of the training data.
            max_length: Most ids per encoded text, `<EOS>` included.
            min_freq: Words seen fewer times become `<UNK>`.

        Returns:
            The tokenizer.
        """
        counts = collections.Counter()
        for text in texts:
            counts.update(split_words(text))
        # Ties are broken alphabetically so a dataset always gives the same ids.
        words = sorted(
            (w for w, n in counts.items() if n >= min_freq and w not in SPECIAL_TOKENS),
            key=lambda w: (-counts[w], w),
        )
        return cls(list(SPECIAL_TOKENS) + words, max_length=max_length, min_freq=min_freq)

    @property
    def vocab_size(self) -> int:
        """Number of tokens, special tokens included."""
        return len(self.vocabulary)

    def token_id(self, word: str) -> int:
        """Returns the id of `word`, or the `<UNK>` id."""
        return self._ids.get(word, UNK_ID)

    def encode(self, text: str, warn: bool = False, what: str = "text") -> list[int]:
        """Encodes `text` as ids ending with `<EOS>`, cut to `max_length`.

        Args:
            text: The text.
            warn: Warn when the text is cut.
            what: What the text is, for the warning.

        Returns:
            At most `max_length` ids, the last one `<EOS>`.
        """
        ids = [self.token_id(word) for word in split_words(text)]
        if len(ids) > self.max_length - 1:
            if warn:
                warnings.warn(
                    f"{what} has {len(ids)} tokens; cut to the first {self.max_length - 1} "
                    f"(max_length={self.max_length} with <EOS>)",
                    stacklevel=3,
                )
            ids = ids[: self.max_length - 1]
        return ids + [EOS_ID]

    def decode(self, ids: Iterable[int]) -> str:
        """Turns ids into text, stopping at `<EOS>` and skipping `<PAD>`/`<SOS>`."""
        words = []
        for index in ids:
            index = int(index)
            if index == EOS_ID:
                break
            if index in (PAD_ID, SOS_ID):
                continue
            words.append(self.vocabulary[index] if 0 <= index < self.vocab_size else UNK)
        return join_words(words)

    def get_config(self) -> dict:
        """Returns the JSON-ready form stored inside the model file."""
        return {
            "vocabulary": list(self.vocabulary),
            "max_length": self.max_length,
            "min_freq": self.min_freq,
        }

    @classmethod
    def from_config(cls, config: dict) -> "AssistantTokenizer":
        """Rebuilds a tokenizer from `get_config()`'s output."""
        try:
            return cls(config["vocabulary"], config["max_length"], config.get("min_freq", 1))
        except (KeyError, TypeError) as error:
            raise DataError(f"malformed tokenizer config: {error}") from None
