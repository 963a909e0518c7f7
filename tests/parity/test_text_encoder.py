"""svdc.TextEncoder against transformers' CLIPTextModel and CLIPTextModelWithProjection (fp32, CPU, perturbed random
weights) on two configs: causal mask, the penultimate-layer output (with and without the final layer norm), padding
positions after the EOS, EOS pooling (modern and legacy eos_token_id), folder loading, and CheckpointError naming a
wrong or missing tensor."""
from __future__ import annotations

import numpy as np
import pytest

import svdc
from tests.reference_helpers import assert_parity, perturb_parameters, state_dict_float32

CONFIGS = {
    "quick_gelu-3layers": dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                               num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                               projection_dim=24, eos_token_id=98, pad_token_id=1, bos_token_id=97),
    "gelu-4layers-legacy-eos": dict(vocab_size=64, hidden_size=48, intermediate_size=96, num_hidden_layers=4,
                                    num_attention_heads=3, max_position_embeddings=16, hidden_act="gelu",
                                    projection_dim=16, layer_norm_eps=1e-6, eos_token_id=2, pad_token_id=1,
                                    bos_token_id=0),
}


def reference(torch, name, with_projection, seed=7):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return perturb_parameters(cls(CLIPTextConfig(**CONFIGS[name])).eval(), seed=seed)


def token_ids(cfg, n, t, seed=0):
    """Rows of BOS, words, EOS and then padding (pad ids after the EOS, different lengths per row)."""
    rng = np.random.default_rng(seed)
    eos, pad, bos = cfg["eos_token_id"], cfg["pad_token_id"], cfg["bos_token_id"]
    ids = np.full((n, t), pad, np.int64)
    for i in range(n):
        length = 3 + (i * 2) % (t - 3)
        words = rng.integers(3, min(eos, cfg["vocab_size"] - 1) if eos > 2 else cfg["vocab_size"], length - 2)
        ids[i, :length] = [bos, *words, eos]
    return ids


@pytest.mark.parametrize("with_projection", [False, True])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_parity(torch_cpu, name, with_projection):
    cfg = CONFIGS[name]
    model = reference(torch_cpu, name, with_projection)
    enc = svdc.TextEncoder.from_config(cfg, state_dict_float32(model), device="cpu")
    t = min(cfg["max_position_embeddings"], 77)
    ids = token_ids(cfg, 3, t)
    with torch_cpu.no_grad():
        ref = model(torch_cpu.from_numpy(ids), output_hidden_states=True)
    out = enc(ids)
    assert_parity(out["hidden_states"], ref.last_hidden_state, what="last_hidden_state")
    if with_projection:
        assert_parity(out["text_embeds"], ref.text_embeds, what="text_embeds")
    else:
        assert out["text_embeds"] is None
        assert_parity(out["pooler_output"], ref.pooler_output, what="pooler_output")
    penult = enc(ids, hidden_layer=-2)
    assert_parity(penult["hidden_states"], ref.hidden_states[-2], what="hidden_states[-2]")
    final_ln = getattr(model, "text_model", model).final_layer_norm  # transformers 5 CLIPTextModel is the text model
    with torch_cpu.no_grad():
        ref_sd2 = final_ln(ref.hidden_states[-2])
    assert_parity(enc(ids, hidden_layer=-2, final_layer_norm=True)["hidden_states"], ref_sd2, what="SD 2.x penultimate")
    # causal: a row's first tokens do not depend on what follows them (padding or other words)
    changed = ids.copy()
    changed[:, -1] = 5
    assert np.array_equal(enc(changed)["hidden_states"][:, :-1], out["hidden_states"][:, :-1])
    # short context (T = 5) as well
    with torch_cpu.no_grad():
        ref5 = model(torch_cpu.from_numpy(ids[:, :5])).last_hidden_state
    assert_parity(enc(ids[:, :5])["hidden_states"], ref5, what="T=5")


def test_folder_and_errors(torch_cpu, tmp_path):
    name = "quick_gelu-3layers"
    model = reference(torch_cpu, name, True)
    model.save_pretrained(tmp_path / "text_encoder")
    enc = svdc.TextEncoder.from_pretrained(tmp_path / "text_encoder", device="cpu")
    ids = token_ids(CONFIGS[name], 2, 9)
    with torch_cpu.no_grad():
        ref = model(torch_cpu.from_numpy(ids))
    assert_parity(enc(ids)["text_embeds"], ref.text_embeds)
    assert enc.num_parameters == sum(p.numel() for p in model.parameters())

    weights = state_dict_float32(model)
    missing = {k: v for k, v in weights.items() if k != "text_model.encoder.layers.1.mlp.fc2.bias"}
    with pytest.raises(svdc.CheckpointError, match="text_model.encoder.layers.1.mlp.fc2.bias"):
        svdc.TextEncoder.from_config(CONFIGS[name], missing, device="cpu")
    wrong = dict(weights, **{"text_model.final_layer_norm.weight": np.ones(3, np.float32)})
    with pytest.raises(svdc.CheckpointError, match="text_model.final_layer_norm.weight"):
        svdc.TextEncoder.from_config(CONFIGS[name], wrong, device="cpu")
    with pytest.raises(ValueError, match="input_ids"):
        enc(np.array([[0, 500]]))
    with pytest.raises(svdc.ShapeError, match="input_ids"):
        enc(np.zeros((1, 78), np.int64))
    with pytest.raises(ValueError, match="hidden_layer"):
        enc(ids, hidden_layer=-4)
    with pytest.raises(TypeError, match="input_ids"):
        enc(ids.astype(np.float32))


def test_sd2_single_file_layout(torch_cpu, tmp_path):
    """An SD 2.x single file (open_clip text tower under cond_stage_model.model., fused in_proj, (C, P) projection,
    plus the UNet / VAE / DDPM buffers, which are ignored) loads to the same model; an unknown key is named."""
    from svdc.naming import text_encoder as naming
    from svdc.weights import save_file

    name = "gelu-4layers-legacy-eos"
    cfg = CONFIGS[name]
    model = reference(torch_cpu, name, True, seed=9)
    single = naming.to_single_file(state_dict_float32(model))
    assert "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight" in single
    single.update({"betas": np.ones(3, np.float32), "cond_stage_model.model.logit_scale": np.ones((), np.float32),
                   "model.diffusion_model.out.2.bias": np.ones(4, np.float32)})
    save_file(single, tmp_path / "sd2.safetensors")
    enc = svdc.TextEncoder.from_pretrained(tmp_path / "sd2.safetensors", device="cpu", config=cfg)
    ids = token_ids(cfg, 2, 12)
    with torch_cpu.no_grad():
        ref = model(torch_cpu.from_numpy(ids), output_hidden_states=True)
    assert_parity(enc(ids)["text_embeds"], ref.text_embeds)
    assert_parity(enc(ids, hidden_layer=-2)["hidden_states"], ref.hidden_states[-2])
    save_file(dict(single, **{"cond_stage_model.model.transformer.resblocks.0.ls_1.gamma": np.ones(48, np.float32)}),
              tmp_path / "bad.safetensors")
    with pytest.raises(svdc.CheckpointError, match="ls_1.gamma"):
        svdc.TextEncoder.from_pretrained(tmp_path / "bad.safetensors", device="cpu", config=cfg)
