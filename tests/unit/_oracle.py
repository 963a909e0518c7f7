"""Float64 NumPy oracles and helpers shared by the op tests (test_ops_*.py)."""
import numpy as np


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def assert_close(actual, ref, rel=1e-5, what="output"):
    """max |actual - ref| <= rel * max(|ref|, 1e-30): a tolerance relative to the data scale."""
    ref = np.asarray(ref, dtype=np.float64)
    actual = np.asarray(actual)
    assert actual.shape == ref.shape, f"{what}: shape {actual.shape} != reference {ref.shape}"
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values"
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1e-30)
    err = float(np.max(np.abs(actual.astype(np.float64) - ref))) if ref.size else 0.0
    assert err <= rel * scale, f"{what}: max err {err:.3e} > {rel:g} * {scale:.3e}"


def conv2d_ref(x, w, b, stride, pad):
    """x (N, C, H, W), w (O, C, kh, kw), pad (top, bottom, left, right) -> (N, O, Ho, Wo) in float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    w = w.astype(np.float64)
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    sh, sw = stride
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    y = np.zeros((N, O, Ho, Wo))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw]  # N C Ho Wo
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def group_norm_ref(x, groups, frames, gamma, beta, eps, silu):
    """5-D group norm: (B*F, C, S...) pooled over `frames` rows, as torch.nn.GroupNorm on (B, C, F, S...)."""
    x = x.astype(np.float64)
    N, C = x.shape[:2]
    g = x.reshape(N // frames, frames, groups, -1)  # b f g (c/g * S)
    mean = g.mean(axis=(1, 3), keepdims=True)
    var = g.var(axis=(1, 3), keepdims=True)
    y = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    bshape = (1, C) + (1,) * (x.ndim - 2)
    if gamma is not None:
        y = y * gamma.astype(np.float64).reshape(bshape)
    if beta is not None:
        y = y + beta.astype(np.float64).reshape(bshape)
    if silu:
        y = y / (1 + np.exp(-y))
    return y


def attention_ref(q, k, v, heads, scale, causal=False):
    """Explicit softmax attention per head; q (B, Lq, H*D), k/v (B, Lk, H*D), heads head-major in the last dim."""
    B, Lq, E = q.shape
    Lk = k.shape[1]
    D = E // heads
    qh = q.astype(np.float64).reshape(B, Lq, heads, D).transpose(0, 2, 1, 3)
    kh = k.astype(np.float64).reshape(B, Lk, heads, D).transpose(0, 2, 1, 3)
    vh = v.astype(np.float64).reshape(B, Lk, heads, D).transpose(0, 2, 1, 3)
    s = scale * qh @ kh.transpose(0, 1, 3, 2)
    if causal:
        s = np.where(np.tril(np.ones((Lq, Lk), dtype=bool)), s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ vh).transpose(0, 2, 1, 3).reshape(B, Lq, E)
