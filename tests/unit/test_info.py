"""`svdc info` / svdc.info(): the SIMD kernels built, the CPU's features and the variant selected, BLAS threads, the
CUDA build, a line per backend and the model x device table (each model run with tiny weights on cpu and emu and
compared with the CPU); a CPU-only installation reads "not built" for CUDA everywhere instead of FAIL."""
import svdc
import svdc.info_text as info_text


def test_info_reports_the_build_and_a_model_table():
    data = svdc.info()
    for key in ("simd", "cpu_features", "cpu_kernels", "cpu_kernels_built", "blas", "blas_threads", "models"):
        assert key in data, key
    assert data["cpu_kernels"].split()[0] in data["cpu_kernels_built"].split()
    assert data["backends"]["cpu"] == "PASS"
    for device in ("cpu", "emu"):
        assert data["models"][device] == {"UNet": "PASS", "VAE": "PASS", "ImageEncoder": "PASS",
                                          "TextEncoder": "PASS"}, device
    assert "cuda" in data["models"] or "cuda:0" in data["models"]
    header = [line for line in info_text.render(data).splitlines() if line.strip().startswith("device ")]
    assert header and header[0].split()[1:] == ["ImageEncoder", "TextEncoder", "UNet", "VAE"]


def fake_data():
    return {"version": "9", "compiler": "cc", "simd": "any x86-64 (baseline) + an AVX2/FMA kernel variant",
            "cpu_features": "sse4.2 avx avx2 fma", "cpu_kernels": "avx2",
            "backends": {"cpu": "PASS", "cuda": "FAIL: not available (No module named 'svdc._C_cuda')"},
            "models": {"cpu": {"UNet": "PASS", "VAE": "PASS"}, "emu": {"UNet": "PASS", "VAE": "FAIL: boom"},
                       "cuda": "FAIL: not available (No module named 'svdc._C_cuda')"}}


def test_cpu_only_build_reads_not_built(monkeypatch):
    monkeypatch.setattr(info_text, "cuda_built", lambda: False)
    text = info_text.render(fake_data())
    assert "cuda: not built" in text and "CUDA toolkit: not built" in text
    cuda_row = [line for line in text.splitlines() if line.strip().startswith("cuda ")]
    assert cuda_row and "not built" in cuda_row[0] and "FAIL" not in cuda_row[0]
    assert "SIMD (this CPU): sse4.2 avx avx2 fma" in text and "CPU kernels selected: avx2" in text
    # The one real failure still reads FAIL, with its reason.
    assert "emu VAE: FAIL: boom" in text


def test_built_cuda_that_fails_keeps_its_reason(monkeypatch):
    monkeypatch.setattr(info_text, "cuda_built", lambda: True)
    text = info_text.render(fake_data())
    assert "cuda: FAIL: not available" in text
