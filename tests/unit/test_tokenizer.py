"""svdc.CLIPTokenizer against transformers' CLIPTokenizer (the tokenizer diffusers' SD pipelines run) on a hermetic
vocabulary and thousands of generated prompts: unicode, punctuation, SD 2.x's "!" pad, literal specials, whitespace
oddities, long and empty prompts."""
import random
import warnings

import numpy as np
import pytest

from svdc.tokenizer import CLIPTokenizer, TokenizerError

from _clip_vocab import write_tokenizer_folder

transformers = pytest.importorskip("transformers")

_FRAGMENTS = [
    "a", "photo", "of", "the", "red", "fox", "in", "snow", "Astronaut", "RIDING", "horse", "cinematic", "8k", "1024",
    "!", "!!", "!!!", "?", ".", ",", "...", "-", "--", "(", ")", "[", "]", "{", "}", ":", ";", "/", "\\", "|", "<", ">",
    "#", "@", "&amp;", "&", "*", "+", "=", "_", "~", "`", "^", "%", "$", "'", "\"", "'s", "'t", "'re", "'ve", "'m",
    "'ll", "'d", "isn't", "we're", "'S", "cat's", "'''s", ".'s", "café", "naïve", "Résumé", "straße", "e\u0301",
    "x\u0301\u0302", "Σ", "ΣΟΦΊΑΣ", "σοφία", "İstanbul", "ǅ", "ﬁ", "ﬂower", "１２３", "ＡＢＣ", "東京タワー", "北京",
    "한국어", "ёжик", "Ωmega", "٣", "½", "²", "Ⅻ", "😀", "🦊", "👩‍🚀", "\u200b", "\u200d", "\u2019", "\u201c",
    "\u201d", "<|startoftext|>", "<|endoftext|>", "<|ENDOFTEXT|>", "<|EndOfText|>", "<|startoftext", "<|", "|>",
    "\x00", "\x7f", "\x1c", "\x1f", "\ufeff", "\U0001d400",
]
_SPACES = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\xa0", "\u2003", "\u3000", "\x85", "\x0b", "\u2028", ""]


def _prompts(count, seed):
    rng = random.Random(seed)
    out = ["", " ", "!", "!" * 100, "a " * 80, "<|endoftext|>", "hello world"]
    while len(out) < count:
        n = rng.choice([1, 2, 3, 5, 8, 13, 20, 40, 90])
        out.append("".join(rng.choice(_FRAGMENTS) + rng.choice(_SPACES) for _ in range(n)))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tokenizer_folder(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def pair(folder):
    return CLIPTokenizer.from_pretrained(folder), transformers.CLIPTokenizer.from_pretrained(folder)


def test_special_ids_follow_the_folder(pair):
    ours, ref = pair
    assert ours.pad_token_id == ref.pad_token_id == 0  # "!" is id 0 in CLIP's layout
    assert (ours.bos_token_id, ours.eos_token_id) == (ref.bos_token_id, ref.eos_token_id)
    assert ours.model_max_length == 77


def test_padded_ids_equal_transformers_on_generated_prompts(pair):
    ours, ref = pair
    prompts = _prompts(2400, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ours(prompts).input_ids
    want = np.asarray(ref(prompts, padding="max_length", max_length=77, truncation=True).input_ids)
    mismatched = [prompts[i] for i in np.nonzero((got != want).any(axis=1))[0]]
    assert got.shape == (len(prompts), 77) and got.dtype == np.int64
    assert not mismatched, f"{len(mismatched)} prompts differ, e.g. {mismatched[:3]!r}"


def test_untruncated_ids_and_tokens_equal_transformers(pair):
    ours, ref = pair
    for prompt in _prompts(600, seed=2):
        assert ours.encode(prompt) == ref(prompt).input_ids, prompt
        assert ours.tokenize(prompt) == ref.tokenize(prompt), prompt


def test_decode_equals_transformers(pair):
    ours, ref = pair
    for prompt in _prompts(200, seed=3):
        ids = ours.encode(prompt, add_special_tokens=False)
        assert ours.decode(ids) == ref.decode(ids), prompt


def test_every_exclamation_mark_is_the_pad_id(pair):
    ours, _ = pair
    ids = ours("wow! great!!").input_ids[0]
    assert ids.tolist().count(0) == 77 - len(ours.encode("wow great", add_special_tokens=False)) - 2


def test_empty_prompt_is_bos_eos_then_pad(pair):
    ours, _ = pair
    row = ours("").input_ids[0]
    assert row[:2].tolist() == [ours.bos_token_id, ours.eos_token_id] and (row[2:] == ours.pad_token_id).all()


def test_long_prompt_is_truncated_with_a_warning_naming_the_removed_text(pair):
    ours, _ = pair
    prompt = " ".join(["fox"] * 80) + " zebra"
    with pytest.warns(UserWarning, match="truncated.*zebra"):
        out = ours(prompt)
    assert out.input_ids.shape == (1, 77) and out.input_ids[0, -1] == ours.eos_token_id
    assert out.attention_mask.sum() == 77


def test_batch_and_longest_padding(pair):
    ours, ref = pair
    prompts = ["a red fox", "the quick brown dog jumps over the lazy cat"]
    got = ours(prompts, padding="longest")
    want = ref(prompts, padding="longest")
    assert got.input_ids.tolist() == want.input_ids and got.attention_mask.tolist() == want.attention_mask


def test_bad_folders_and_arguments(tmp_path, folder):
    import shutil

    broken = tmp_path / "no_merges"
    shutil.copytree(folder, broken)
    (broken / "merges.txt").unlink()
    with pytest.raises(TokenizerError, match="no merges.txt"):
        CLIPTokenizer.from_pretrained(broken)
    bad_json = tmp_path / "bad_json"
    shutil.copytree(folder, bad_json)
    (bad_json / "vocab.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="vocab.json"):
        CLIPTokenizer.from_pretrained(bad_json)
    bad_merge = tmp_path / "bad_merge"
    shutil.copytree(folder, bad_merge)
    (bad_merge / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(TokenizerError, match=r"merges.txt:2"):
        CLIPTokenizer.from_pretrained(bad_merge)
    with pytest.raises(TokenizerError, match="path"):
        CLIPTokenizer.from_pretrained(tmp_path / "missing")
    tok = CLIPTokenizer.from_pretrained(folder)
    with pytest.raises(TypeError, match="text"):
        tok(3)
    with pytest.raises(ValueError, match="padding"):
        tok("a", padding="maximum")
    with pytest.raises(ValueError, match="max_length"):
        tok("a", max_length=1)


def test_pipeline_folder_finds_its_tokenizer_subfolder(tmp_path, folder):
    import shutil

    shutil.copytree(folder, tmp_path / "tokenizer")
    (tmp_path / "model_index.json").write_text("{}")
    assert CLIPTokenizer.from_pretrained(tmp_path).encode("a red fox") == \
        CLIPTokenizer.from_pretrained(folder).encode("a red fox")


def test_open_clip_bpe_file_gives_the_folder_tokenizer(tmp_path, folder):
    import gzip

    lines = open(f"{folder}/merges.txt", encoding="utf-8").read().splitlines()[1:]
    with gzip.open(tmp_path / "bpe.txt.gz", "wt", encoding="utf-8") as f:
        f.write("bpe_simple_vocab_16e6.txt#version: 0.2\n" + "\n".join(lines) + "\n")
    from_file = CLIPTokenizer.from_bpe_file(str(tmp_path / "bpe.txt.gz"), num_merges=len(lines))
    from_folder = CLIPTokenizer.from_pretrained(folder)
    assert from_file.encoder == from_folder.encoder
    for prompt in _prompts(100, seed=4):
        assert from_file.encode(prompt) == from_folder.encode(prompt)
    with pytest.raises(TokenizerError, match="merge lines"):
        CLIPTokenizer.from_bpe_file(str(tmp_path / "bpe.txt.gz"), num_merges=len(lines) + 1)
