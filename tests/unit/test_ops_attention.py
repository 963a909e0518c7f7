"""Multi-head attention (tiled online softmax and the direct short-Lk path) vs an explicit float64 softmax, plus
its memory bound and error behaviour."""
import numpy as np
import pytest

import svdc
from svdc._native import testing_ops as load_testing_ops

from tests.unit._oracle import assert_close, attention_ref, rand

_ops = load_testing_ops()


@pytest.mark.parametrize(
    "B,Lq,Lk,heads,D",
    [
        (2, 7, 5, 2, 8),  # direct path, odd sizes
        (1, 1, 1, 1, 4),  # one token attends to one key
        (3, 33, 1, 5, 16),  # Lk = 1 (the image-embedding cross-attention): softmax is 1, y = v
        (2, 14, 14, 5, 64),  # temporal attention over 14 frames
        (1, 1000, 777, 2, 64),  # tiled path, sizes not multiples of the query/key blocks
        (2, 129, 65, 3, 40),  # just past the direct-path and query-block limits
        (1, 9, 1025, 1, 12),  # one query block, three key blocks
    ],
)
def test_attention_matches_softmax(B, Lq, Lk, heads, D):
    rng = np.random.default_rng(Lq + Lk)
    q, k, v = rand(rng, B, Lq, heads * D), rand(rng, B, Lk, heads * D), rand(rng, B, Lk, heads * D)
    scale = D**-0.5
    assert_close(_ops.attention(q, k, v, heads, scale), attention_ref(q, k, v, heads, scale))


@pytest.mark.parametrize("B,L,heads,D", [(2, 9, 2, 8), (1, 1, 1, 4), (1, 700, 2, 32), (1, 64, 1, 16), (1, 65, 1, 16)])
def test_causal_attention_matches_masked_softmax(B, L, heads, D):
    rng = np.random.default_rng(L)
    q, k, v = rand(rng, B, L, heads * D), rand(rng, B, L, heads * D), rand(rng, B, L, heads * D)
    assert_close(_ops.attention(q, k, v, heads, 0.3, True), attention_ref(q, k, v, heads, 0.3, causal=True))


def test_attention_large_scores_do_not_overflow():
    rng = np.random.default_rng(2)
    q, k, v = rand(rng, 1, 50, 16, scale=30.0), rand(rng, 1, 300, 16, scale=30.0), rand(rng, 1, 300, 16)
    assert_close(_ops.attention(q, k, v, 1, 1.0), attention_ref(q, k, v, 1, 1.0), rel=1e-4)


def test_attention_matches_torch_sdpa(torch_cpu):
    torch = torch_cpu
    rng = np.random.default_rng(3)
    B, L, heads, D = 2, 300, 4, 32
    q, k, v = (rand(rng, B, L, heads * D) for _ in range(3))
    split = lambda a: torch.from_numpy(a).reshape(B, L, heads, D).transpose(1, 2)  # b l (h d) -> b h l d
    ref = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
    ref = ref.transpose(1, 2).reshape(B, L, heads * D).numpy()
    assert_close(_ops.attention(q, k, v, heads, D**-0.5), ref, rel=1e-5)


def test_attention_memory_is_o_block():
    # Lq = Lk = 4096 with one head: a full score matrix would be 64 MiB; the arena scratch must stay far below.
    rng = np.random.default_rng(4)
    q, k, v = (rand(rng, 1, 4096, 64) for _ in range(3))
    y = _ops.attention(q, k, v, 1, 0.125)
    assert np.all(np.isfinite(y))
    peak = _ops.last_arena_peak()
    assert 0 < peak < 4096 * 4096 * 4 // 16, f"arena peak {peak} bytes grows with Lq x Lk"
    spot = attention_ref(q[:, :50], k, v, 1, 0.125)
    assert_close(y[:, :50], spot)


def test_attention_errors_name_the_argument():
    q = np.zeros((2, 5, 12), np.float32)
    kv = np.zeros((2, 7, 12), np.float32)
    with pytest.raises(svdc.ShapeError, match=r"attention: width 12 \(last dim of q\) is not divisible by num_heads = 5"):
        _ops.attention(q, kv, kv, 5, 1.0)
    with pytest.raises(ValueError, match=r"attention: num_heads must be >= 1, got 0"):
        _ops.attention(q, kv, kv, 0, 1.0)
    with pytest.raises(svdc.ShapeError, match=r"attention: causal attention needs Lq == Lk, got Lq = 5, Lk = 7"):
        _ops.attention(q, kv, kv, 2, 1.0, True)
    with pytest.raises(svdc.ShapeError, match=r"attention: v has shape \(2, 6, 12\), expected \(2, 7, 12\)"):
        _ops.attention(q, kv, np.zeros((2, 6, 12), np.float32), 2, 1.0)
    with pytest.raises(svdc.ShapeError, match=r"attention: k has shape \(1, 7, 12\), expected \(2, 7, 12\)"):
        _ops.attention(q, kv[:1].copy(), kv, 2, 1.0)
    with pytest.raises(svdc.ShapeError, match=r"attention: q has shape \(5, 12\), expected 3 dimensions"):
        _ops.attention(q[0].copy(), kv, kv, 2, 1.0)
    with pytest.raises(svdc.ShapeError, match=r"attention: k has no tokens"):
        _ops.attention(q, kv[:, :0].copy(), kv[:, :0].copy(), 2, 1.0)
    with pytest.raises(ValueError, match=r"attention: scale must be finite"):
        _ops.attention(q, kv, kv, 2, float("nan"))
    with pytest.raises(svdc.ShapeError, match=r"k: expected dtype float32"):
        _ops.attention(q, kv.astype(np.float16), kv, 2, 1.0)
