"""A hermetic CLIP-style BPE vocabulary for tokenizer tests: the 256 byte symbols, the same with "</w>", merges
learned here from a small generated corpus, and the two specials — laid out as CLIP's vocab.json is (so "!" is id 0,
the id SD 2.x pads with). Written as a diffusers tokenizer/ folder."""
import collections
import json
import os
import random

from svdc.tokenizer import _BYTE_SYMBOLS

_WORDS = ("a photo of the red fox in snow astronaut riding horse on mars painting by van gogh cinematic lighting "
          "highly detailed portrait city at night rain neon reflections mountain lake sunrise the quick brown dog "
          "jumps over lazy cat's tail isn't we're they've i'm you'll he'd 1024 2x 8k ultra hd café naïve résumé "
          "straße σοφία東京タワー 北京 ёжик").split()


def _learn_merges(num_merges: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    counts = collections.Counter()
    for _ in range(3000):
        word = rng.choice(_WORDS)
        symbols = tuple(_BYTE_SYMBOLS[b] for b in word.lower().encode("utf-8"))
        counts[symbols[:-1] + (symbols[-1] + "</w>",)] += 1
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for word, n in counts.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += n
        if not pairs:
            break
        (left, right), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append((left, right))
        merged = collections.Counter()
        for word, n in counts.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == left and word[i + 1] == right:
                    out.append(left + right)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += n
        counts = merged
    return merges


def write_tokenizer_folder(folder, num_merges: int = 400, pad_token: str = "!") -> str:
    """Writes vocab.json, merges.txt and the SD 2.x tokenizer_config.json / special_tokens_map.json."""
    merges = _learn_merges(num_merges)
    # CLIP's order: the printable bytes (which stand for themselves, "!" first), then the remapped ones.
    symbols = [s for s in _BYTE_SYMBOLS if ord(s) < 256] + [s for s in _BYTE_SYMBOLS if ord(s) >= 256]
    tokens = symbols + [s + "</w>" for s in symbols] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {}
    for t in tokens:
        vocab.setdefault(t, len(vocab))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    specials = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                "pad_token": pad_token}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(specials, f)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({**specials, "model_max_length": 77, "tokenizer_class": "CLIPTokenizer", "do_lower_case": True}, f)
    return str(folder)
