"""Hugging Face tokenizer files (tokenizer.json, tokenizer_config.json) for o200k_harmony, made from the bundled
``o200k_base.tiktoken``.

llama.cpp's converter reads a checkpoint's vocabulary through ``transformers.AutoTokenizer`` and recognises the
pre-tokenizer by hashing the ids of a fixed text, so the files must tokenize exactly like gpt-oss's own tokenizer. A
tiktoken file lists each token's bytes (base64) and rank; a byte-level BPE tokenizer also needs the merge that makes
each token, which we recover by re-running BPE on the token's bytes with only the lower-ranked tokens allowed: the two
parts left at the end are the merge (ranks are merge order in tiktoken, so this is exact).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Final

# o200k's pre-tokenizer split (tiktoken's o200k_base pattern): letter runs with an optional case-aware contraction,
# numbers in groups of up to three, punctuation runs, newlines, whitespace.
O200K_PATTERN: Final = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)

# o200k_harmony's named special tokens (docs/model.md#special-tokens); every other id from 199998 up to the model's
# vocab_size is <|reserved_N|>.
HARMONY_SPECIALS: Final[dict[int, str]] = {
    199998: "<|startoftext|>",
    199999: "<|endoftext|>",
    200002: "<|return|>",
    200003: "<|constrain|>",
    200005: "<|channel|>",
    200006: "<|start|>",
    200007: "<|end|>",
    200008: "<|message|>",
    200012: "<|call|>",
}
FIRST_SPECIAL: Final = 199998


def load_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """Token bytes -> rank from a tiktoken BPE file (one ``base64 rank`` pair a line)."""
    ranks: dict[bytes, int] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        if not line.strip():
            continue
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return ranks


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes take the code
    points from U+0100 on, so every byte string becomes a printable str without spaces or control characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _split_by_lower_ranks(token: bytes, rank: int, ranks: dict[bytes, int]) -> list[bytes]:
    """BPE on ``token``'s bytes using only merges ranked below ``rank``, lowest rank first."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best_index = -1
        best_rank = rank
        for i in range(len(parts) - 1):
            pair_rank = ranks.get(parts[i] + parts[i + 1])
            if pair_rank is not None and pair_rank < best_rank:
                best_index, best_rank = i, pair_rank
        if best_index < 0:
            break
        parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    return parts


def extract_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The BPE merges, in rank order, that build every multi-byte token of a tiktoken vocabulary."""
    merges: list[tuple[int, bytes, bytes]] = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        parts = _split_by_lower_ranks(token, rank, ranks)
        if len(parts) != 2:
            raise ValueError(f"token {token!r} (rank {rank}) is not one merge of two lower-ranked tokens: {parts}")
        merges.append((rank, parts[0], parts[1]))
    merges.sort()
    return [(left, right) for _, left, right in merges]


def special_tokens(vocab_size: int) -> dict[int, str]:
    """Id -> text of every special token from 199998 up to ``vocab_size`` (named or ``<|reserved_N|>``)."""
    return {i: HARMONY_SPECIALS.get(i, f"<|reserved_{i}|>") for i in range(FIRST_SPECIAL, vocab_size)}


def tokenizer_json(ranks: dict[bytes, int], vocab_size: int) -> dict[str, Any]:
    """A ``tokenizers`` byte-level BPE tokenizer (tokenizer.json content) equivalent to tiktoken's encoder."""
    alphabet = byte_to_unicode()

    def text(token: bytes) -> str:
        return "".join(alphabet[b] for b in token)

    if max(ranks.values()) >= FIRST_SPECIAL:
        raise ValueError(f"ordinary token ranks must stay below {FIRST_SPECIAL}")
    added = [
        {
            "id": i,
            "content": content,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, content in special_tokens(vocab_size).items()
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": O200K_PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            # tiktoken looks a whole pre-token up before merging; ignore_merges does the same.
            "ignore_merges": True,
            "vocab": {text(token): rank for token, rank in sorted(ranks.items(), key=lambda item: item[1])},
            "merges": [[text(left), text(right)] for left, right in extract_merges(ranks)],
        },
    }


def tokenizer_config(vocab_size: int) -> dict[str, Any]:
    """tokenizer_config.json: the fast tokenizer class and gpt-oss's bos/eos/pad tokens."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": HARMONY_SPECIALS[199998],
        "eos_token": HARMONY_SPECIALS[200002],
        "pad_token": HARMONY_SPECIALS[199999],
        "model_max_length": 131072,
        "added_tokens_decoder": {
            str(i): {
                "content": content,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i, content in special_tokens(vocab_size).items()
        },
    }


def write_tokenizer_files(out_dir: Path, vocab_path: Path, vocab_size: int) -> list[Path]:
    """Write tokenizer.json and tokenizer_config.json for ``vocab_size`` ids into ``out_dir``; returns their paths."""
    ranks = load_tiktoken_ranks(vocab_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in (
        ("tokenizer.json", tokenizer_json(ranks, vocab_size)),
        ("tokenizer_config.json", tokenizer_config(vocab_size)),
    ):
        path = out_dir / name
        path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
        written.append(path)
    return written
