"""Curation II scores against independent references: CLIP text-image similarity equals the cosine of transformers'
CLIPModel projections (a tiny random CLIPModel saved with save_pretrained and loaded by svdc's own CLIP code), the
aesthetic head equals torch's evaluation of the same weights in the LAION layout, and the stage's bad inputs."""
from __future__ import annotations

import numpy as np
import pytest

from svdc.curation.aesthetics import AestheticHead
from svdc.curation.embeddings import ClipProvider
from svdc.curation.scores import Scorers, score_video
from svdc.tiny import write_byte_tokenizer


@pytest.fixture(scope="module")
def clip_pair(tmp_path_factory):
    """(transformers CLIPModel with random weights, its folder) with a byte-level CLIP tokenizer in the folder."""
    torch = pytest.importorskip("torch")
    from transformers import CLIPConfig, CLIPModel

    folder = tmp_path_factory.mktemp("clip")
    vocab = write_byte_tokenizer(folder)
    config = CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                         bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=0),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=48, patch_size=16, hidden_act="quick_gelu"),
        projection_dim=24)
    torch.manual_seed(3)
    model = CLIPModel(config).eval()
    with torch.no_grad():  # move every parameter off its initial value (norms at 1, biases at 0 hide mistakes)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(folder)
    return model, str(folder)


def test_similarity_equals_transformers_clipmodel(clip_pair):
    import torch

    model, folder = clip_pair
    provider = ClipProvider.from_pretrained(folder, device="cpu")
    assert provider.dim == 24
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)  # not square: the centre crop matters
    texts = ["a red fox in the snow", "BIG TITLE", "waves"]
    image = provider.embed_images(frames)
    text = provider.embed_texts(texts)
    ours = (image / np.linalg.norm(image, axis=1, keepdims=True)) @ \
        (text / np.linalg.norm(text, axis=1, keepdims=True)).T
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(provider.token_ids(texts).astype(np.int64)),
                    pixel_values=torch.from_numpy(provider.preprocess(frames)))
        reference = (out.logits_per_image / model.logit_scale.exp()).numpy()  # cosine similarities
    assert np.abs(reference).max() > 0.05
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def test_components_equal_clipmodel_folder(clip_pair, tmp_path):
    """The towers as separate transformers folders (CLIPVisionModelWithProjection / CLIPTextModelWithProjection, as
    an SVD image_encoder/ and a text tower with projection are laid out) embed as the CLIPModel folder does."""
    import shutil

    from transformers import (CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    model, folder = clip_pair
    state = model.state_dict()
    for cls, config_cls, sub, prefix, projection, out in (
            (CLIPVisionModelWithProjection, CLIPVisionConfig, model.config.vision_config, "vision_model.",
             "visual_projection.weight", "image_encoder"),
            (CLIPTextModelWithProjection, CLIPTextConfig, model.config.text_config, "text_model.",
             "text_projection.weight", "text_encoder")):
        tower = cls(config_cls(**{**sub.to_dict(), "projection_dim": model.config.projection_dim}))
        tower.load_state_dict({k: v for k, v in state.items() if k.startswith(prefix) or k == projection},
                              strict=True)
        tower.save_pretrained(tmp_path / out)
    shutil.copytree(folder, tmp_path / "tokenizer", ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
    whole = ClipProvider.from_pretrained(folder, device="cpu")
    parts = ClipProvider.from_pretrained(tmp_path, device="cpu")  # the image_encoder/ text_encoder/ tokenizer/ layout
    frames = np.random.default_rng(1).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    np.testing.assert_allclose(parts.embed_images(frames), whole.embed_images(frames), atol=1e-6)
    np.testing.assert_allclose(parts.embed_texts(["a cat"]), whole.embed_texts(["a cat"]), atol=1e-6)
    from svdc import TextEncoder

    plain = {k: v.numpy() for k, v in state.items() if k.startswith("text_model.")}  # no text projection
    with pytest.raises(ValueError, match="expected a TextEncoder with a text projection"):
        ClipProvider(parts.image_encoder, TextEncoder.from_config(model.config.text_config.to_dict(), plain,
                                                                  device="cpu"), parts.tokenizer)


def test_score_video_similarity_matches_reference(clip_pair, demo_manifest):
    """The stage's clip_sim_<role> = mean over the 3 frames of the reference cosine with that caption."""
    import torch

    from svdc.curation.manifest import read_table
    from svdc.curation.scores import read_frames

    model, folder = clip_pair
    root = demo_manifest["root"]
    video = next(v for v in read_table(root, "videos") if v["status"] == "ok")
    clips = [c for c in read_table(root, "clips") if c["video_id"] == video["video_id"]]
    captions = {video["video_id"]: {"image": "a still texture", "video": "a camera pan"}}
    provider = ClipProvider.from_pretrained(folder, device="cpu")
    rows = score_video(video, clips, Scorers(embeddings=provider, captions=captions))
    c = clips[0]
    trio = [c["start_frame"], (c["start_frame"] + c["end_frame"]) // 2, c["end_frame"]]
    assert rows[0]["score_frames"] == trio
    frames = read_frames(video["path"], trio)
    pixels = provider.preprocess(np.stack([frames[i] for i in trio]))
    roles = ["image", "video"]
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(provider.token_ids([captions[video["video_id"]][r] for r in roles])
                                               .astype(np.int64)), pixel_values=torch.from_numpy(pixels))
        cos = (out.logits_per_image / model.logit_scale.exp()).numpy()  # (3 frames, 2 captions)
    for k, role in enumerate(roles):
        assert abs(rows[0][f"clip_sim_{role}"] - cos[:, k].mean()) < 1e-5
    assert abs(rows[0]["clip_sim"] - cos.mean()) < 1e-5
    assert rows[0]["caption_image"] == "a still texture"


def _laion_layout_state(rng, widths):
    state = {}
    for k, index in enumerate((0, 2, 4, 6, 7)[: len(widths) - 1]):
        state[f"layers.{index}.weight"] = rng.standard_normal((widths[k + 1], widths[k])).astype(np.float32) * 0.2
        state[f"layers.{index}.bias"] = rng.standard_normal(widths[k + 1]).astype(np.float32) * 0.1
    return state


def test_aesthetic_head_equals_torch(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    widths = [24, 40, 12, 10, 6, 1]  # the improved predictor's layout at toy widths
    state = _laion_layout_state(rng, widths)
    np.savez(tmp_path / "head.npz", **state)
    head = AestheticHead.from_file(tmp_path / "head.npz")
    # The reference: the improved predictor's nn.Sequential (Linear, Dropout, ..., no activations) in eval mode.
    ref = torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.Dropout(0.2), torch.nn.Linear(40, 12),
                              torch.nn.Dropout(0.2), torch.nn.Linear(12, 10), torch.nn.Dropout(0.1),
                              torch.nn.Linear(10, 6), torch.nn.Linear(6, 1)).eval().double()
    ref.load_state_dict({k.removeprefix("layers."): torch.from_numpy(v.astype(np.float64)) for k, v in state.items()})
    emb = rng.standard_normal((5, 24))
    with torch.no_grad():
        unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)  # LAION heads score normalised embeddings
        expected = ref(torch.from_numpy(unit)).numpy()[:, 0]
    np.testing.assert_allclose(head(emb), expected, rtol=1e-10, atol=1e-12)
    # V1 layout: one bare Linear (weight, bias)
    np.savez(tmp_path / "v1.npz", weight=state["layers.0.weight"][:1], bias=state["layers.0.bias"][:1])
    v1 = AestheticHead.from_file(tmp_path / "v1.npz")
    np.testing.assert_allclose(v1(emb), unit @ state["layers.0.weight"][0].astype(np.float64)
                               + float(state["layers.0.bias"][0]), rtol=1e-12)


def test_head_width_mismatch_is_a_clear_error(tmp_path, clip_pair):
    _, folder = clip_pair
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "laion.npz", **_laion_layout_state(rng, [768, 16, 8, 4, 2, 1]))
    head = AestheticHead.from_file(tmp_path / "laion.npz")
    provider = ClipProvider.from_pretrained(folder, device="cpu")  # width 24
    with pytest.raises(ValueError, match="width 768.*gives 24"):
        Scorers(embeddings=provider, aesthetic=head).check()
    with pytest.raises(ValueError, match="expects width 768"):
        head(np.ones((2, 24)))
    bad = _laion_layout_state(rng, [8, 4, 1])
    bad["layers.2.weight"] = np.ones((1, 5), np.float32)  # 4 outputs feed a 5-wide layer
    np.savez(tmp_path / "broken.npz", **bad)
    with pytest.raises(ValueError, match="input width 4"):
        AestheticHead.from_file(tmp_path / "broken.npz")
    with pytest.raises(ValueError, match=r"\.npz or \.safetensors"):
        (tmp_path / "head.pth").write_bytes(b"x")
        AestheticHead.from_file(tmp_path / "head.pth")


def test_missing_captions_and_captioner_hook(clip_pair, demo_manifest):
    from svdc.curation.manifest import read_table

    _, folder = clip_pair
    root = demo_manifest["root"]
    video = next(v for v in read_table(root, "videos") if v["status"] == "ok")
    clips = [c for c in read_table(root, "clips") if c["video_id"] == video["video_id"]]
    provider = ClipProvider.from_pretrained(folder, device="cpu")
    with pytest.raises(ValueError, match="captions.*have none"):
        score_video(video, clips, Scorers(embeddings=provider))

    class MiddleFrameCaptioner:  # a user plugin: describes the middle frame's mean colour
        name = "image"

        def __call__(self, frames, captions):
            r, g, b = frames[1].reshape(-1, 3).mean(axis=0)
            return "reddish" if r > max(g, b) else "not red"

    class Summary:
        name = "summary"

        def __call__(self, frames, captions):
            return "summary of " + captions["image"]

    rows = score_video(video, clips, Scorers(embeddings=provider, captioners=[MiddleFrameCaptioner(), Summary()]))
    assert all(r["caption_summary"] == "summary of " + r["caption_image"] for r in rows)
    assert all(np.isfinite(r["clip_sim_summary"]) for r in rows)


def test_empty_manifest_is_a_clear_error(tmp_path):
    from svdc.curation.manifest import Manifest
    from svdc.curation.scores import ScoreParams, score_manifest

    Manifest(tmp_path, "jsonl").write_tables([])
    with pytest.raises(ValueError, match="no clips to score"):
        score_manifest(tmp_path, ScoreParams(), scorers=Scorers(), progress=False)


def test_score_params_checks(tmp_path):
    from svdc.curation.scores import ScoreParams

    with pytest.raises(ValueError, match="give all three"):
        ScoreParams(image_encoder=str(tmp_path)).validate()
    with pytest.raises(ValueError, match="needs a CLIP model"):
        ScoreParams(aesthetic_head=str(tmp_path)).validate()
    with pytest.raises(FileNotFoundError, match="captions: no such file"):
        ScoreParams(captions=str(tmp_path / "nope.jsonl")).validate()
    with pytest.raises(ValueError, match="ocr: expected"):
        ScoreParams(ocr="craft").validate()
