"""CLIP byte-level BPE tokenizer in pure Python, equal to transformers' CLIPTokenizer (the Rust `tokenizers` backend
that diffusers' Stable Diffusion pipelines use), read from a diffusers `tokenizer/` folder (vocab.json + merges.txt).

The steps, in the order transformers applies them:
1. special tokens (bos, eos, pad, unk) are split out of the raw text, case-sensitively and before any normalisation;
   SD 2.x declares pad = "!", so every "!" in a prompt becomes the pad id (diffusers issue #4153);
2. each remaining segment: NFC, every run of whitespace -> one space, per-character lower case (so a final capital
   sigma gives "σ", not Python's word-final "ς");
3. pre-tokenisation: the CLIP pattern ('s|'t|'re|'ve|'m|'ll|'d|<specials>|letters+|one digit|other+), then the
   GPT-2 byte-level pattern inside each piece; whitespace is dropped;
4. each piece's UTF-8 bytes -> printable stand-in characters, "</w>" on its last symbol, merges applied by rank;
5. [bos] + ids + [eos], truncated to model_max_length and padded with the pad id.
No ftfy and no HTML unescaping: transformers 5 applies neither (open_clip/sgm do; prompts with curly quotes,
ligatures or "&amp;" therefore tokenize differently there).
"""
from __future__ import annotations

import json
import os
import unicodedata
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._validate import check_path

__all__ = ["CLIPTokenizer", "TokenizerOutput", "TokenizerError"]


class TokenizerError(ValueError):
    """A tokenizer folder or file that cannot be used (missing vocab/merges, malformed JSON or merge lines)."""


# Characters the tokenizers library's regex engine (Oniguruma) treats as \s: the Unicode White_Space property.
# Python's str.isspace() differs (it also accepts U+001C..U+001F and rejects U+0085 in some versions), so list it.
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
_SPECIAL_PATTERNS = ("<|startoftext|>", "<|endoftext|>")  # in the CLIP pre-tokenizer pattern itself

_SPACE, _LETTER, _NUMBER, _OTHER = range(4)


@lru_cache(maxsize=65536)
def _char_class(ch: str) -> int:
    if ch in _WHITESPACE:
        return _SPACE
    category = unicodedata.category(ch)
    if category[0] == "L":
        return _LETTER
    if category[0] == "N":
        return _NUMBER
    return _OTHER


def _byte_symbols() -> list[str]:
    """GPT-2's reversible map from the 256 byte values to printable characters (printable Latin-1 bytes map to
    themselves, the rest to U+0100 onwards in byte order)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    symbols = {}
    extra = 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


_BYTE_SYMBOLS = _byte_symbols()
_SYMBOL_BYTES = {s: b for b, s in enumerate(_BYTE_SYMBOLS)}


def _match_contraction(text: str, i: int) -> int:
    """Length of the contraction starting at text[i], or 0."""
    if text[i] != "'":
        return 0
    for c in _CONTRACTIONS:
        if text.startswith(c, i):
            return len(c)
    return 0


def _run_length(text: str, i: int, cls: int) -> int:
    j = i
    while j < len(text) and _char_class(text[j]) == cls:
        j += 1
    return j - i


def _clip_pieces(text: str) -> list[str]:
    """The CLIP pre-tokenizer pattern over normalised text; whitespace between matches is dropped."""
    pieces = []
    i = 0
    while i < len(text):
        n = 0
        for special in _SPECIAL_PATTERNS:
            if text.startswith(special, i):
                n = len(special)
                break
        if not n:
            n = _match_contraction(text, i)
        if not n:
            cls = _char_class(text[i])
            if cls == _SPACE:
                i += 1
                continue
            n = 1 if cls == _NUMBER else _run_length(text, i, cls)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def _byte_level_pieces(piece: str) -> list[str]:
    """The GPT-2 pattern the byte-level step applies inside one CLIP piece (which holds no whitespace): it only
    splits a piece that mixes classes, i.e. the literal "<|endoftext|>" -> "<|", "endoftext", "|>"."""
    out = []
    i = 0
    while i < len(piece):
        n = _match_contraction(piece, i) or _run_length(piece, i, _char_class(piece[i]))
        out.append(piece[i : i + n])
        i += n
    return out


@dataclass
class TokenizerOutput:
    """What `tokenizer(prompts)` returns: input_ids (N, L) int64 and attention_mask (N, L) int64, as transformers'
    BatchEncoding with return_tensors="np"; also indexable by those names."""

    input_ids: np.ndarray
    attention_mask: np.ndarray

    def __getitem__(self, key):
        return getattr(self, key)


def _token_content(value, what: str, path: str) -> str:
    """Special tokens are strings or {"content": ...} objects in tokenizer_config.json / special_tokens_map.json."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise TokenizerError(f"{path}: {what}: expected a string or an object with 'content', got {value!r}")


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokenizerError(f"{path}: cannot read JSON: {e}") from None
    if not isinstance(data, dict):
        raise TokenizerError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_fast_tokenizer(path: str) -> tuple[dict, list[tuple[str, str]]]:
    """(vocab, merges) of the BPE model in a `tokenizers` tokenizer.json (what transformers >= 5 saves in place of
    vocab.json + merges.txt); merges are pairs or "left right" strings."""
    model = _read_json(path).get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict) \
            or not isinstance(model.get("merges"), list):
        raise TokenizerError(f"{path}: expected a BPE model with 'vocab' and 'merges'")
    merges = []
    for number, merge in enumerate(model["merges"]):
        pair = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
            raise TokenizerError(f"{path}: model.merges[{number}]: expected a merge pair, got {merge!r}")
        merges.append((pair[0], pair[1]))
    return model["vocab"], merges


def _read_merges(path: str) -> list[tuple[str, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{path}: cannot read merges: {e}") from None
    merges = []
    for number, line in enumerate(lines, 1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise TokenizerError(f"{path}:{number}: expected a merge 'left right', got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


class CLIPTokenizer:
    """CLIP BPE tokenizer with transformers' `CLIPTokenizer` semantics.

    >>> tok = CLIPTokenizer.from_pretrained("stable-diffusion-2-1/tokenizer")
    >>> tok(["a red fox in snow", ""]).input_ids.shape
    (2, 77)
    """

    def __init__(self, vocab: dict, merges: list, *, bos_token: str = "<|startoftext|>",
                 eos_token: str = "<|endoftext|>", pad_token: str = "<|endoftext|>",
                 unk_token: str = "<|endoftext|>", model_max_length: int = 77):
        if not isinstance(vocab, dict) or not vocab:
            raise TokenizerError(f"vocab: expected a non-empty dict of token -> id, got {type(vocab).__name__}")
        self.encoder = {str(k): int(v) for k, v in vocab.items()}
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.bpe_ranks = {tuple(pair): rank for rank, pair in enumerate(merges)}
        for name, token in (("bos_token", bos_token), ("eos_token", eos_token), ("unk_token", unk_token),
                            ("pad_token", pad_token)):
            if token not in self.encoder:
                raise TokenizerError(f"{name}: {token!r} is not in the vocabulary ({len(self.encoder)} tokens)")
        if not isinstance(model_max_length, int) or model_max_length < 2:
            raise TokenizerError(f"model_max_length: expected an integer >= 2, got {model_max_length!r}")
        self.bos_token, self.eos_token, self.pad_token, self.unk_token = bos_token, eos_token, pad_token, unk_token
        self.bos_token_id = self.encoder[bos_token]
        self.eos_token_id = self.encoder[eos_token]
        self.pad_token_id = self.encoder[pad_token]
        self.unk_token_id = self.encoder[unk_token]
        self.model_max_length = model_max_length
        # Split out of raw text first; longer strings first so one special never hides a longer one.
        self._specials = sorted({bos_token, eos_token, pad_token, unk_token}, key=len, reverse=True)
        self._bpe_cache: dict[str, list[str]] = {}

    @classmethod
    def from_pretrained(cls, path: str, subfolder: str | None = None) -> "CLIPTokenizer":
        """Loads a diffusers `tokenizer/` folder, or a pipeline folder holding one (`subfolder` defaults to
        "tokenizer" when `path` has no vocab.json). Special tokens and model_max_length come from
        tokenizer_config.json / special_tokens_map.json when present."""
        path = check_path(path, "path")
        if not os.path.isdir(path):
            raise TokenizerError(f"path: expected a tokenizer folder (vocab.json + merges.txt), got {path!r}")
        if subfolder is None and not os.path.isfile(os.path.join(path, "vocab.json")):
            subfolder = "tokenizer"
        folder = os.path.join(path, subfolder) if subfolder else path
        files = {name: os.path.join(folder, name) for name in ("vocab.json", "merges.txt")}
        fast = os.path.join(folder, "tokenizer.json")
        use_fast = not any(os.path.isfile(f) for f in files.values()) and os.path.isfile(fast)
        for name, file in files.items():
            if not use_fast and not os.path.isfile(file):
                raise TokenizerError(f"{folder}: no {name} (a CLIP tokenizer folder holds vocab.json and merges.txt, "
                                     "or the tokenizer.json transformers >= 5 writes)")
        options = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the second wins, as in transformers
            file = os.path.join(folder, name)
            if not os.path.isfile(file):
                continue
            config = _read_json(file)
            for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
                if config.get(key) is not None:
                    options[key] = _token_content(config[key], key, file)
            length = config.get("model_max_length")
            if isinstance(length, int) and 2 <= length <= 4096:  # absurd values mean "no limit" in transformers
                options["model_max_length"] = length
        if use_fast:
            return cls(*_read_fast_tokenizer(fast), **options)
        return cls(_read_json(files["vocab.json"]), _read_merges(files["merges.txt"]), **options)

    @classmethod
    def from_bpe_file(cls, path: str, pad_token: str = "!", num_merges: int = 48894) -> "CLIPTokenizer":
        """Builds the tokenizer from OpenAI/open_clip's merges file (`bpe_simple_vocab_16e6.txt[.gz]`, MIT), for
        Stability single-file users whose checkpoint carries no tokenizer folder: vocab = the 256 byte symbols, the
        same with "</w>", the first `num_merges` merges joined, then <|startoftext|> and <|endoftext|> — the
        layout of the vocab.json in SD 2.x's tokenizer/ folder. pad_token="!" as SD 2.x declares."""
        path = os.fspath(path)
        try:
            if path.endswith(".gz"):
                import gzip

                with gzip.open(path, "rt", encoding="utf-8") as f:
                    lines = f.read().split("\n")
            else:
                with open(path, encoding="utf-8") as f:
                    lines = f.read().split("\n")
        except (OSError, UnicodeDecodeError, EOFError) as e:
            raise TokenizerError(f"path: cannot read the BPE merges file {path!r}: {e}") from None
        merge_lines = [line for line in lines[1:] if line][:num_merges]  # line 0 is a version header
        if len(merge_lines) < num_merges:
            raise TokenizerError(f"{path}: expected at least {num_merges} merge lines after the header, "
                                 f"got {len(merge_lines)}")
        merges = []
        for number, line in enumerate(merge_lines, 2):
            parts = line.split(" ")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise TokenizerError(f"{path}:{number}: expected a merge 'left right', got {line!r}")
            merges.append((parts[0], parts[1]))
        symbols = [s for s in _BYTE_SYMBOLS if ord(s) < 256] + [s for s in _BYTE_SYMBOLS if ord(s) >= 256]
        tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        vocab = {t: i for i, t in enumerate(tokens)}
        return cls(vocab, merges, pad_token=pad_token)

    # -- the pipeline of steps ------------------------------------------------------------------------------------

    def _split_specials(self, text: str) -> list[tuple[bool, str]]:
        """Raw text -> [(is_special, segment)], specials matched case-sensitively, leftmost first."""
        out = []
        start = i = 0
        while i < len(text):
            special = next((s for s in self._specials if text.startswith(s, i)), None)
            if special is None:
                i += 1
                continue
            if i > start:
                out.append((False, text[start:i]))
            out.append((True, special))
            i += len(special)
            start = i
        if start < len(text):
            out.append((False, text[start:]))
        return out

    @staticmethod
    def _normalize(text: str) -> str:
        text = unicodedata.normalize("NFC", text)
        collapsed = []
        for ch in text:
            if ch in _WHITESPACE:
                if not collapsed or collapsed[-1] != " ":
                    collapsed.append(" ")
            else:
                collapsed.append(ch.lower())  # per character: no word-final sigma rule
        return "".join(collapsed)

    def _bpe(self, word: str) -> list[str]:
        """One pre-token's byte symbols -> BPE tokens, lowest-rank merge first."""
        cached = self._bpe_cache.get(word)
        if cached is not None:
            return cached
        symbols = list(word)
        symbols[-1] += "</w>"
        while len(symbols) > 1:
            ranked = [(self.bpe_ranks.get(pair, None), i) for i, pair in enumerate(zip(symbols, symbols[1:]))]
            ranked = [(r, i) for r, i in ranked if r is not None]
            if not ranked:
                break
            best = min(ranked)[0]
            left, right = next(pair for pair in zip(symbols, symbols[1:]) if self.bpe_ranks.get(pair) == best)
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
                    merged.append(left + right)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        if len(self._bpe_cache) < 100_000:
            self._bpe_cache[word] = symbols
        return symbols

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings (no bos/eos)."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        tokens = []
        for is_special, segment in self._split_specials(text):
            if is_special:
                tokens.append(segment)
                continue
            for piece in _clip_pieces(self._normalize(segment)):
                for part in _byte_level_pieces(piece):
                    tokens += self._bpe("".join(_BYTE_SYMBOLS[b] for b in part.encode("utf-8")))
        return tokens

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Text -> ids, untruncated; with add_special_tokens, [bos] + ids + [eos]."""
        ids = [self.encoder.get(t, self.unk_token_id) for t in self.tokenize(text)]
        return [self.bos_token_id, *ids, self.eos_token_id] if add_special_tokens else ids

    def decode(self, ids) -> str:
        """Ids -> text as transformers decodes: byte symbols back to UTF-8, each "</w>" a space."""
        symbols = "".join(self.decoder.get(int(i), self.unk_token) for i in ids)
        data = bytes(_SYMBOL_BYTES.get(c, ord("?")) for c in symbols)
        return data.decode("utf-8", "replace").replace("</w>", " ").strip()

    def __call__(self, text, max_length: int | None = None, padding: str = "max_length", truncation: bool = True,
                 warn_truncation: bool = True) -> TokenizerOutput:
        """A prompt or a list of prompts -> TokenizerOutput with input_ids (N, L) int64.

        padding="max_length" pads every row to max_length (default model_max_length); "longest" to the longest
        row. truncation keeps [bos] + the first max_length-2 tokens + [eos] and, with warn_truncation, warns with
        the removed text as diffusers does."""
        prompts = [text] if isinstance(text, str) else text
        if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts):
            raise TypeError(f"text: expected a str or a list of str, got {type(text).__name__}")
        if padding not in ("max_length", "longest"):
            raise ValueError(f"padding: expected 'max_length' or 'longest', got {padding!r}")
        limit = self.model_max_length if max_length is None else max_length
        if not isinstance(limit, int) or limit < 2:
            raise ValueError(f"max_length: expected an integer >= 2, got {max_length!r}")
        rows = []
        for prompt in prompts:
            ids = self.encode(prompt, add_special_tokens=False)
            if truncation and len(ids) > limit - 2:
                if warn_truncation:
                    warnings.warn(
                        f"The following part of your input was truncated because CLIP can only handle sequences up "
                        f"to {limit} tokens: {self.decode(ids[limit - 2:])!r}", stacklevel=2)
                ids = ids[: limit - 2]
            rows.append([self.bos_token_id, *ids, self.eos_token_id])
        width = limit if padding == "max_length" else max((len(r) for r in rows), default=2)
        width = max(width, max((len(r) for r in rows), default=2))  # untruncated rows may exceed max_length
        input_ids = np.full((len(rows), width), self.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for n, row in enumerate(rows):
            input_ids[n, : len(row)] = row
            attention_mask[n, : len(row)] = 1
        return TokenizerOutput(input_ids=input_ids, attention_mask=attention_mask)
