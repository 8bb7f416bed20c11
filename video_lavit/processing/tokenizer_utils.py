"""A small Llama-style tokenizer built locally, for tests and miniature models.

The released Video-LaVIT checkpoint uses the stock 32000-piece Llama-2 SentencePiece tokenizer, which cannot be
downloaded here. :func:`build_tiny_llama_tokenizer` builds a tokenizer with the same *conventions* (a byte-fallback
BPE with a ``▁`` word-boundary marker, ``<unk>`` = 0, ``<s>`` = 1, ``</s>`` = 2, the 256 byte pieces ``<0x00>`` ..
``<0xFF>`` at ids 3 .. 258 exactly as in Llama, BOS added by default) but a vocabulary of a few thousand pieces, so
that any English sentence (indeed any UTF-8 text) tokenises and decodes back exactly.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from transformers import LlamaTokenizer


# Words that get a single piece each (besides their prefixes). The list covers the original conversation template
# (system prompt and role names) and the everyday vocabulary of captions and questions; anything else falls back to
# characters and bytes, so coverage only affects sequence length, never correctness.
DEFAULT_WORDS: tuple[str, ...] = tuple(
    """
    a an the and or but if then than so as of in on at to from by with without for about into over under after
    before between through during above below up down out off again further once here there when where why how
    what which who whom whose this that these those i me my we our you your he him his she her it its they them
    their is are was were be been being have has had do does did done can could will would shall should may might
    must not no yes all any both each few more most other some such only own same too very just now also well
    chat curious user artificial intelligence assistant gives helpful detailed polite answers answer question
    questions USER ASSISTANT A The What Describe Please Is Are Can How Why Where Who Which There This It In
    describe video image picture photo frame clip scene camera shot view background foreground left right top
    bottom middle front back side man woman men women person people boy girl child children baby group crowd
    dog cat bird horse cow fish animal animals car truck bus bike bicycle train boat plane road street city
    building house room kitchen table chair bed door window wall floor water river lake sea ocean beach sand
    sky cloud clouds sun snow rain tree trees grass flower flowers field mountain forest park garden light dark
    red blue green yellow black white brown gray orange pink purple color colors big small large little long
    short tall old new young happy sad good bad hot cold fast slow high low first last next one two three four
    five six seven eight nine ten many several people's playing plays play running runs run walking walks walk
    sitting sits sit standing stands stand holding holds hold wearing wears wear looking looks look talking
    talks talk eating eats eat drinking drinking drink riding rides ride driving drives drive jumping jumps jump
    dancing dances dance singing sings sing cooking cooks cook swimming swims swim flying flies fly moving moves
    move making makes make taking takes take using uses use showing shows show going goes go coming comes come
    happening happens happen doing does something someone nothing everything time day night morning evening
    year years way thing things part parts place world life hand hands head face eyes hair body arm arms leg legs
    foot feet ball game music song guitar piano phone computer book food cake fire smoke machine sport sports
    football soccer basketball tennis player players team video's generate generated motion keyframe
    """.split()
)


def _word_pieces(word: str) -> list[str]:
    """The chain of prefixes ``▁w``, ``▁wo``, ... that makes ``▁word`` one piece."""
    marked = "▁" + word
    return [marked[:end] for end in range(2, len(marked) + 1)]


def build_tiny_llama_tokenizer(
    words: Iterable[str] | None = None,
    *,
    padding_side: str = "left",
    pad_token: str = "<unk>",
    model_max_length: int = 4096,
) -> LlamaTokenizer:
    """Build a Llama-style byte-fallback BPE tokenizer without any download.

    Layout: ``<unk>`` = 0, ``<s>`` = 1, ``</s>`` = 2, bytes ``<0x00>`` .. ``<0xFF>`` = 3 .. 258 (so ``"\\n"`` is 13 as
    in Llama), then ``▁``, the printable ASCII characters, and for every word ``w`` of ``words`` the pieces of the
    merge chain ``▁w[:1]``, ``▁w[:2]``, ..., ``▁w`` (each word of the list becomes one token when preceded by a
    space or at the start of a text). BOS is added by default, EOS is not, as in Llama.

    Args:
        words: whole-word vocabulary; defaults to :data:`DEFAULT_WORDS`.
        padding_side: ``"left"`` (the generation default of the original) or ``"right"``.
        pad_token: the original understanding runner pads with ``<unk>``; its generation code pads with ``</s>``.
        model_max_length: the released model's context length.

    Returns:
        A :class:`transformers.LlamaTokenizer`; ``len(tokenizer)`` is the text vocabulary size.
    """
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    words = DEFAULT_WORDS if words is None else tuple(words)
    for word in words:
        if not isinstance(word, str) or not word or any(ch.isspace() for ch in word):
            raise ValueError(f"words must be non-empty strings without whitespace, got {word!r}")

    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    base_chars = ["▁"] + [ch for ch in string.printable if not ch.isspace()]
    for ch in base_chars:
        vocab.setdefault(ch, len(vocab))

    merges: list[tuple[str, str]] = []
    for word in words:
        for ch in word:
            vocab.setdefault(ch, len(vocab))
        pieces = _word_pieces(word)
        previous = "▁"
        for piece in pieces:
            if piece not in vocab:
                vocab[piece] = len(vocab)
                merges.append((previous, piece[-1]))
            previous = piece
    if pad_token not in vocab:
        raise ValueError(f"pad_token {pad_token!r} is not in the vocabulary; use '<unk>' or '</s>'")

    return LlamaTokenizer(
        vocab=vocab,
        merges=merges,
        add_bos_token=True,
        add_eos_token=False,
        pad_token=pad_token,
        padding_side=padding_side,
        model_max_length=model_max_length,
    )


__all__ = ["DEFAULT_WORDS", "build_tiny_llama_tokenizer"]
