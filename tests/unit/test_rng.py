"""svdc.Generator reproduces torch.randn(..., generator=torch.Generator().manual_seed(seed)) bit for bit on the CPU:
both layouts (< 16 and >= 16 elements), the redrawn tail, the cached second Box-Muller sample, successive draws."""
import numpy as np
import pytest

import svdc

SEEDS = [0, 42, 2**32 + 5, 2**63 - 1]
SIZES = [1, 2, 15, 16, 17, 31, 32, 33, 1000]
SHAPES = [(1, 14, 4, 72, 128), (1, 25, 4, 72, 128), (1, 3, 576, 1024)]


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def _torch_capability_is_vectorised(torch):
    # svdc reproduces torch's AVX2/AVX512 kernel (every x86-64 CPU with AVX2); the DEFAULT kernel differs by 1 ulp.
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in ("AVX2", "AVX512"):
        pytest.skip(f"torch runs its {cap} CPU kernel here; svdc reproduces the AVX2/AVX512 one")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", SIZES)
def test_randn_sizes_match_torch(torch_cpu, seed, n):
    _torch_capability_is_vectorised(torch_cpu)
    ref = torch_cpu.randn(n, generator=torch_cpu.Generator().manual_seed(seed)).numpy()
    out = svdc.Generator(seed).randn(n)
    assert out.dtype == np.float32 and out.shape == (n,)
    np.testing.assert_array_equal(_bits(out), _bits(ref))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 2**63 - 1])
def test_randn_pipeline_shapes_match_torch(torch_cpu, shape, seed):
    _torch_capability_is_vectorised(torch_cpu)
    ref = torch_cpu.randn(shape, generator=torch_cpu.Generator().manual_seed(seed)).numpy()
    out = svdc.Generator(seed).randn(shape)
    assert out.shape == shape
    np.testing.assert_array_equal(_bits(out), _bits(ref))


@pytest.mark.parametrize("sizes", [[(1, 3, 64, 64), (1, 2, 4, 8, 8)], [3, 1000, 5, 7, 16], [1, 1, 1], [17, 2, 1]])
def test_successive_draws_continue_the_stream(torch_cpu, sizes):
    """The pipeline draws the augmentation noise, then the latents, from one generator; small draws also share
    torch's cached second Box-Muller sample across calls."""
    _torch_capability_is_vectorised(torch_cpu)
    g_ref = torch_cpu.Generator().manual_seed(7)
    g = svdc.Generator(7)
    for s in sizes:
        ref = torch_cpu.randn(s, generator=g_ref).numpy()
        np.testing.assert_array_equal(_bits(g.randn(s)), _bits(ref))


def test_manual_seed_restarts_and_clears_cache(torch_cpu):
    _torch_capability_is_vectorised(torch_cpu)
    g = svdc.Generator(3)
    g.randn(1)  # leaves a cached sample behind
    g.manual_seed(5)
    ref = torch_cpu.randn(3, generator=torch_cpu.Generator().manual_seed(5)).numpy()
    np.testing.assert_array_equal(_bits(g.randn(3)), _bits(ref))
    assert g.initial_seed() == 5


def test_negative_seed_wraps_like_torch(torch_cpu):
    _torch_capability_is_vectorised(torch_cpu)
    ref_gen = torch_cpu.Generator().manual_seed(-5)
    g = svdc.Generator(-5)
    assert g.initial_seed() == ref_gen.initial_seed()
    np.testing.assert_array_equal(_bits(g.randn(40)), _bits(torch_cpu.randn(40, generator=ref_gen).numpy()))


def test_empty_and_bad_shapes():
    g = svdc.Generator(0)
    assert g.randn(0).shape == (0,)
    assert g.randn((2, 0, 3)).shape == (2, 0, 3)
    with pytest.raises(ValueError, match="shape"):
        g.randn((2, -1))
    with pytest.raises(ValueError, match="shape"):
        g.randn(2.5)
    with pytest.raises(TypeError, match="seed"):
        svdc.Generator("7")
    with pytest.raises(ValueError, match="seed"):
        svdc.Generator(2**64)
