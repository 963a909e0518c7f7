"""The package imports, reports its build, and the CPU backend passes its self-check."""
import numpy as np

import svdc
from svdc._native import testing_ops as load_testing_ops


def test_info_reports_cpu_pass():
    data = svdc.info()
    assert data["version"] == svdc.__version__
    assert data["backends"]["cpu"] == "PASS"
    assert "cuda" in data["backends"]


def test_devices_lists_cpu_first():
    assert svdc.devices()[0] == "cpu"


def test_exceptions_are_typed():
    assert issubclass(svdc.ShapeError, ValueError)
    assert issubclass(svdc.ShapeError, svdc.SvdcError)
    assert issubclass(svdc.CheckpointError, svdc.SvdcError)
    assert issubclass(svdc.DeviceUnavailableError, svdc.SvdcError)


def test_cli_info_runs(capsys):
    from svdc.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cpu: PASS" in out


def test_linear_smoke():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5), dtype=np.float32)
    w = rng.standard_normal((4, 5), dtype=np.float32)
    b = rng.standard_normal(4, dtype=np.float32)
    y = load_testing_ops().linear(x, w, b)
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-5, atol=1e-5)


def test_block_test_surface_lives_in_the_testing_module():
    from svdc._native import _C

    assert not [name for name in dir(_C) if "resblock" in name.lower()]
    assert callable(load_testing_ops().st_resblock)
