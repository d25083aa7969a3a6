"""Case-preserving tokenizer of the assistant: words, subword fallback, exact round trip.

Text is cut into pre-tokens, each a word or one punctuation mark together with the
single space before it (`" Python"`, `"?"`), or a run of other whitespace. Every
token is a substring of the text, so detokenizing is concatenation and gives the
text back byte for byte: `tokenizer.decode(tokenizer.encode(text)) == text`.

Two kinds of vocabulary, learned from the training texts:

- `"subword"` (default): byte-pair encoding. Frequent words become single tokens;
  any other word falls back to the learned pieces (ultimately single characters),
  and a character never seen in training to its UTF-8 bytes (`<0xNN>` tokens), so
  nothing is ever unknown.
- `"word"`: whole pre-tokens only; words outside the vocabulary are `<UNK>`.

For copy attention, `encode_query` gives every query word that is not a single
known token an extended id, so the decoder can copy it whole (see `CopyGenerator`).

Ids 0-3 are the special tokens `<PAD>`, `<UNK>`, `<SOS>` and `<EOS>`.

Example:

>>> tokenizer = AssistantTokenizer.build(["How do I train?"] * 3, vocab_size=300)
>>> tokenizer.decode(tokenizer.encode("How do I fly to Zürich?"))
'How do I fly to Zürich?'
"""

from __future__ import annotations

import collections
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Literal

from keras_trainer.errors import DataError

PAD, UNK, SOS, EOS = "<PAD>", "<UNK>", "<SOS>", "<EOS>"
SPECIAL_TOKENS = (PAD, UNK, SOS, EOS)
PAD_ID, UNK_ID, SOS_ID, EOS_ID = 0, 1, 2, 3
BYTE_TOKENS = tuple(f"<0x{value:02X}>" for value in range(256))
TOKENIZER_KINDS = ("subword", "word")

# A word or one punctuation mark with at most one space before it; other
# whitespace runs on their own (a run before a word leaves its last space to it).
_PRE_TOKEN = re.compile(r" ?\w+| ?[^\w\s]|\s+(?!\S)|\s+")


def pre_tokenize(text: str) -> list[str]:
    """Cuts `text` into pre-tokens whose concatenation is `text`.

    >>> pre_tokenize("Hi,  Ada!\\n")
    ['Hi', ',', ' ', ' Ada', '!', '\\n']
    """
    return _PRE_TOKEN.findall(text)


def _learn_merges(counts: dict[str, int], alphabet: set, budget: int) -> list[tuple[str, str]]:
    """Byte-pair merges: the most frequent adjacent pair, `budget` times at most.

    Stops early when no pair occurs twice. Ties go to the alphabetically first
    pair, so a dataset always gives the same merges.
    """
    words = {word: [c for c in word] for word in counts if all(c in alphabet for c in word)}
    pairs: collections.Counter = collections.Counter()
    where: dict[tuple[str, str], set] = collections.defaultdict(set)
    for word, symbols in words.items():
        for pair in zip(symbols, symbols[1:]):
            pairs[pair] += counts[word]
            where[pair].add(word)
    merges = []
    while len(merges) < budget and pairs:
        best = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        if best[1] < 2:
            break
        pair = best[0]
        merges.append(pair)
        joined = pair[0] + pair[1]
        for word in list(where.pop(pair, ())):
            symbols = words[word]
            count = counts[word]
            for old in zip(symbols, symbols[1:]):
                pairs[old] -= count
                if pairs[old] <= 0:
                    del pairs[old]
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                    merged.append(joined)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            words[word] = merged
            for new in zip(merged, merged[1:]):
                pairs[new] += count
                where[new].add(word)
        pairs.pop(pair, None)
    return merges


class AssistantTokenizer:
    """Maps text to token ids and back; case, spacing and punctuation are kept.

    Args:
        vocabulary: All tokens, index = id; starts with the 4 special tokens (and,
            for "subword", the 256 byte tokens).
        max_length: Most ids per encoded text, `<EOS>` included.
        kind: "subword" (byte-pair pieces under the words) or "word".
        merges: The byte-pair merges in order ("subword" only).
        min_freq: Fewest occurrences of a word in the "word" vocabulary (kept for
            the record).

    Use `AssistantTokenizer.build(texts, ...)` to learn one from data.
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        max_length: int = 64,
        kind: Literal["subword", "word"] = "subword",
        merges: Sequence[Sequence[str]] = (),
        min_freq: int = 1,
    ):
        vocabulary = list(vocabulary)
        if kind not in TOKENIZER_KINDS:
            raise DataError(f"tokenizer kind must be one of {TOKENIZER_KINDS}, got {kind!r}")
        if tuple(vocabulary[:4]) != SPECIAL_TOKENS:
            raise DataError(
                f"vocabulary must start with {list(SPECIAL_TOKENS)}, got {vocabulary[:4]}"
            )
        if kind == "subword" and tuple(vocabulary[4:260]) != BYTE_TOKENS:
            raise DataError("a subword vocabulary must hold the 256 byte tokens after the specials")
        if len(set(vocabulary)) != len(vocabulary):
            raise DataError("vocabulary has duplicate tokens")
        if max_length < 2:
            raise DataError(f"max_length must be at least 2, got {max_length}")
        self.vocabulary = vocabulary
        self.max_length = int(max_length)
        self.kind = kind
        self.merges = [tuple(pair) for pair in merges]
        self.min_freq = int(min_freq)
        self._ids = {token: index for index, token in enumerate(vocabulary)}
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        max_length: int = 64,
        vocab_size: int = 1000,
        kind: Literal["subword", "word"] = "subword",
        min_freq: int = 1,
    ) -> AssistantTokenizer:
        """Learns the vocabulary from `texts`.

        Args:
            texts: Every query and response of the training data.
            max_length: Most ids per encoded text, `<EOS>` included.
            vocab_size: Most tokens, special (and byte) tokens included. "subword"
                learns merges until it is reached or no pair repeats; "word" keeps
                the most frequent words.
            kind: "subword" or "word".
            min_freq: "word" only: words seen fewer times become `<UNK>`.

        Returns:
            The tokenizer.
        """
        if kind not in TOKENIZER_KINDS:
            raise DataError(f"tokenizer kind must be one of {TOKENIZER_KINDS}, got {kind!r}")
        counts: collections.Counter = collections.Counter()
        for text in texts:
            counts.update(pre_tokenize(text))
        if kind == "word":
            words = sorted(
                (w for w, n in counts.items() if n >= min_freq and w not in SPECIAL_TOKENS),
                key=lambda w: (-counts[w], w),
            )
            words = words[: max(vocab_size - len(SPECIAL_TOKENS), 0)]
            return cls(list(SPECIAL_TOKENS) + words, max_length, "word", min_freq=min_freq)
        base = list(SPECIAL_TOKENS) + list(BYTE_TOKENS)
        alphabet = sorted({c for word in counts for c in word} - set(base))
        if len(base) + len(alphabet) > vocab_size:
            raise DataError(
                f"vocab_size={vocab_size} is too small for a subword vocabulary: the "
                f"{len(base)} special and byte tokens and the {len(alphabet)} characters of "
                f"the data need {len(base) + len(alphabet)}; raise vocab_size"
            )
        merges = _learn_merges(counts, set(alphabet), vocab_size - len(base) - len(alphabet))
        vocabulary = base + alphabet + [a + b for a, b in merges]
        # Two merges can build the same string along different paths; keep the first.
        vocabulary = list(dict.fromkeys(vocabulary))
        return cls(vocabulary, max_length, "subword", merges=merges)

    @property
    def vocab_size(self) -> int:
        """Number of tokens, special tokens included."""
        return len(self.vocabulary)

    def token_id(self, token: str) -> int:
        """Returns the id of a text token, or the `<UNK>` id."""
        return self._ids.get(token, UNK_ID)

    def _pieces(self, word: str) -> list[str]:
        """A pre-token's tokens: itself if known, else byte-pair pieces, else bytes."""
        if word in self._ids or self.kind == "word":
            return [word]
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols: list[str] = []
        for char in word:
            if char in self._ids:
                symbols.append(char)
            else:
                symbols.extend(BYTE_TOKENS[b] for b in char.encode("utf-8"))
        while len(symbols) > 1:
            ranked = [
                (self._ranks.get(pair, len(self._ranks)), i)
                for i, pair in enumerate(zip(symbols, symbols[1:]))
            ]
            rank, i = min(ranked)
            if rank == len(self._ranks):
                break
            symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        self._cache[word] = symbols
        return symbols

    def tokenize(self, text: str) -> list[str]:
        """Cuts `text` into tokens (strings); `"".join` gives `text` back."""
        return [piece for word in pre_tokenize(text) for piece in self._pieces(word)]

    def encode(self, text: str, warn: bool = False, what: str = "text") -> list[int]:
        """Encodes `text` as ids ending with `<EOS>`, cut to `max_length`.

        Args:
            text: The text.
            warn: Warn when the text is cut.
            what: What the text is, for the warning.

        Returns:
            At most `max_length` ids, the last one `<EOS>`.
        """
        return [i for _, ids in self._units(text, warn, what) for i in ids] + [EOS_ID]

    def _units(self, text: str, warn: bool, what: str) -> list[tuple[str, list[int]]]:
        """`(pre-token, its ids)` pairs of `text`, cut so the ids fit `max_length - 1`."""
        units, count = [], 0
        for word in pre_tokenize(text):
            ids = [self.token_id(piece) for piece in self._pieces(word)]
            units.append((word, ids))
            count += len(ids)
        if count > self.max_length - 1:
            if warn:
                warnings.warn(
                    f"{what} has {count} tokens; cut to the first {self.max_length - 1} "
                    f"(max_length={self.max_length} with <EOS>)",
                    stacklevel=4,
                )
            kept, room = [], self.max_length - 1
            for word, ids in units:
                if room <= 0:
                    break
                kept.append((word, ids[:room]))
                room -= len(ids)
            units = kept
        return units

    @staticmethod
    def _is_word_token(ids: list[int]) -> bool:
        return len(ids) == 1 and ids[0] != UNK_ID

    def encode_query(self, text: str, warn: bool = False) -> tuple[list[int], list[int], list[str]]:
        """Encodes a query for copy attention, with its extended vocabulary.

        Every word that is not one known token (a word split into subword pieces,
        or an unknown word) is entered in the query's extended vocabulary: the k-th
        such distinct word is id `vocab_size + k`, and copying the position of its
        first token produces the whole word at once.

        Returns:
            `(ids, copy_ids, oovs)`: the token ids the encoder reads (ending with
            `<EOS>`), the id copying each position produces, and the words of the
            extended vocabulary.
        """
        ids, copy_ids, oovs = [], [], []
        for word, word_ids in self._units(text, warn, "query"):
            ids += word_ids
            if self._is_word_token(word_ids):
                copy_ids += word_ids
                continue
            if word not in oovs:
                oovs.append(word)
            copy_ids += [self.vocab_size + oovs.index(word)] + word_ids[1:]
        return ids + [EOS_ID], copy_ids + [EOS_ID], oovs

    def encode_response(self, text: str, oovs: Sequence[str]) -> list[int]:
        """Encodes a response against its query's extended vocabulary (`encode_query`).

        A word of the query's extended vocabulary is one id, `vocab_size + k`;
        everything else is encoded as by `encode`.
        """
        ids = []
        for word, word_ids in self._units(text, False, "response"):
            if not self._is_word_token(word_ids) and word in oovs:
                ids.append(self.vocab_size + list(oovs).index(word))
            else:
                ids += word_ids
        return ids + [EOS_ID]

    def decode(self, ids: Iterable[int], oovs: Sequence[str] = ()) -> str:
        """Turns ids into text, stopping at `<EOS>` and skipping `<PAD>`/`<SOS>`.

        Args:
            ids: Token ids, extended ids included.
            oovs: The query's unknown tokens (from `encode_extended`): extended id
                `vocab_size + k` is `oovs[k]`.
        """
        parts: list[str] = []
        pending = bytearray()
        for index in ids:
            index = int(index)
            if index == EOS_ID:
                break
            if index in (PAD_ID, SOS_ID):
                continue
            if 4 <= index < 260 and self.kind == "subword":
                pending.append(index - 4)
                continue
            if pending:
                parts.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            if index < self.vocab_size:
                parts.append(self.vocabulary[index])
            elif index - self.vocab_size < len(oovs):
                parts.append(oovs[index - self.vocab_size])
            else:
                parts.append(UNK)
        if pending:
            parts.append(pending.decode("utf-8", errors="replace"))
        return "".join(parts)

    def get_config(self) -> dict:
        """Returns the JSON-ready form stored inside the model file."""
        return {
            "kind": self.kind,
            "vocabulary": list(self.vocabulary),
            "merges": [list(pair) for pair in self.merges],
            "max_length": self.max_length,
            "min_freq": self.min_freq,
        }

    @classmethod
    def from_config(cls, config: dict) -> AssistantTokenizer:
        """Rebuilds a tokenizer from `get_config()`'s output."""
        if not isinstance(config, dict) or "kind" not in config:
            raise DataError(
                "malformed tokenizer config: no 'kind' (a model saved before the "
                "case-preserving tokenizer; retrain it)"
            )
        try:
            return cls(
                config["vocabulary"],
                config["max_length"],
                config["kind"],
                config.get("merges", ()),
                config.get("min_freq", 1),
            )
        except (KeyError, TypeError) as error:
            raise DataError(f"malformed tokenizer config: {error}") from None
