"""svdc.orbits: the sgm orbit lists, the dynamic orbit (bit for bit the sgm demo's for the same seed), the sine and
ComfyUI orbits, the cameras (orthonormal, looking at the origin, input view on +X) and transforms.json."""
import json
import math

import numpy as np
import pytest

from svdc import orbits

# Stability-AI/generative-models scripts/demo/sv3d_helpers.py gen_dynamic_loop(21, 10.0) after np.random.seed(23),
# run once with numpy 2 (returns radians; azimuths first).
SGM_DYNAMIC_SEED23_AZ_RAD = [
    0.20995734304506097, 0.4903881944358751, 0.764337558989008, 1.1771214292822547, 1.3887836734594783,
    1.5922873107693478, 2.0323640029784737, 2.418464226735755, 2.6751028467347924, 3.0018303996041915,
    3.2318542926451186, 3.411402054185859, 3.716801630976267, 4.091669156525757, 4.407754081722712,
    4.694636538670407, 5.067102785865909, 5.395555666681037, 5.747951761039136, 5.993081858626985, 0.0]
SGM_DYNAMIC_SEED23_EL_RAD = [
    0.9430142245030368, 1.358813423335423, 1.3307943422525805, 1.0257959152936709, 0.6442379495075908,
    0.25780854924865815, -0.12457462469953534, -0.4053827341515598, -0.4087480463217896, -0.07203395120628464,
    0.42109980160515076, 0.7578138967206551, 0.754448584550425, 0.4736404750984011, 0.09125730115020755,
    -0.2951720991087249, -0.6767300648948049, -0.9817284918537154, -1.0097475729365575, -0.5939483741041706,
    0.1745329251994334]


def test_static_default_is_the_sgm_list():
    e, a = orbits.static_orbit()
    assert e.shape == a.shape == (21,)
    assert np.all(e == 10.0)
    # 360·(k+1)/21 for k = 0..19, then 0 for the input view (frame 20)
    np.testing.assert_allclose(a[:20], [360.0 * (k + 1) / 21 for k in range(20)], rtol=0, atol=1e-12)
    assert a[20] == 0.0
    polar, az = orbits.polars_azimuths_rad(e, a)
    np.testing.assert_allclose(polar, np.full(21, 1.3962634015954636), rtol=0, atol=1e-15)  # 80° in radians
    assert az[20] == 0.0 and np.all(np.diff(az[:20]) > 0)


def test_user_lists_are_relative_to_the_last_frame_and_keep_their_order():
    az = [(100.0 + 15.0 * k) for k in range(21)]
    az[3], az[4] = az[4], az[3]  # out of order: the sgm script's sort is a no-op, so the order is kept
    e, a = orbits.user_orbit(5.0, az)
    assert np.all(e == 5.0)
    expected = [(x - az[-1]) % 360.0 for x in az]
    assert a.tolist() == expected and a[20] == 0.0
    assert a[3] > a[4]
    e21 = np.linspace(-20, 20, 21)
    e, _ = orbits.user_orbit(e21, az)
    assert np.array_equal(e, e21)


def test_dynamic_orbit_equals_sgm_demo_for_the_same_seed():
    e, a = orbits.dynamic_orbit(10.0, seed=23)
    assert np.array_equal(np.deg2rad(a), SGM_DYNAMIC_SEED23_AZ_RAD)
    assert np.array_equal(np.deg2rad(e), SGM_DYNAMIC_SEED23_EL_RAD)


@pytest.mark.parametrize("elevation", [-30.0, 0.0, 10.0, 45.0])
def test_dynamic_orbit_invariants_and_reproducibility(elevation):
    for seed in range(5):
        e, a = orbits.dynamic_orbit(elevation, seed=seed)
        assert e.shape == a.shape == (21,)
        assert np.all(np.abs(e) < 90)
        assert a[20] == 0.0 and np.all(np.diff(a[:20]) > 0) and a[0] > 0 and a[19] < 360
        e2, a2 = orbits.dynamic_orbit(elevation, seed=seed)
        assert np.array_equal(e, e2) and np.array_equal(a, a2)
    assert not np.array_equal(orbits.dynamic_orbit(elevation, 1)[0], orbits.dynamic_orbit(elevation, 2)[0])


def test_sine_and_comfyui_orbits():
    e, a = orbits.sine_orbit(0.0, 30.0)
    assert abs(e.max() - 30.0) < 0.2 and abs(e.min() + 30.0) < 0.2
    assert abs(e[20]) < 1e-12  # back at the input view's elevation
    assert np.array_equal(a, orbits.static_orbit()[1])
    e, a = orbits.comfyui_orbit()
    assert np.all(e == 0.0)
    assert a.tolist() == [(18.0 * k) % 360.0 for k in range(21)] and a[0] == a[20] == 0.0


def test_build_orbit_dispatch():
    assert np.array_equal(orbits.build_orbit()[1], orbits.static_orbit()[1])
    assert np.all(orbits.build_orbit("static", 20)[0] == 20)
    assert np.array_equal(orbits.build_orbit("dynamic", 5, seed=3)[0], orbits.dynamic_orbit(5, 3)[0])
    assert np.array_equal(orbits.build_orbit("sine", 10)[0], orbits.sine_orbit(10)[0])
    assert np.array_equal(orbits.build_orbit("comfyui", 0)[1], orbits.comfyui_orbit(0)[1])
    az = np.arange(21) * 10.0
    assert np.array_equal(orbits.build_orbit("static", 0, az)[1], orbits.user_orbit(0, az)[1])


@pytest.mark.parametrize("call,match", [
    (lambda: orbits.user_orbit([10.0] * 20, np.arange(21.0)), "elevations: expected 1 value or 21"),
    (lambda: orbits.user_orbit([10.0] * 22, np.arange(21.0)), "elevations: expected 1 value or 21"),
    (lambda: orbits.user_orbit(10.0, np.arange(20.0)), "azimuths: expected 21"),
    (lambda: orbits.user_orbit(10.0, np.arange(22.0)), "azimuths: expected 21"),
    (lambda: orbits.user_orbit(float("nan"), np.arange(21.0)), "elevations: expected finite"),
    (lambda: orbits.user_orbit(10.0, [float("nan")] * 21), "azimuths: expected finite"),
    (lambda: orbits.static_orbit(91.0), r"\[-90, 90\]"),
    (lambda: orbits.static_orbit(-90.5), r"\[-90, 90\]"),
    (lambda: orbits.sine_orbit(70.0, 30.0), r"\[-90, 90\]"),
    (lambda: orbits.build_orbit("spiral"), "orbit: expected one of"),
    (lambda: orbits.build_orbit("sine", [1.0] * 21), "takes one elevation"),
    (lambda: orbits.build_orbit("dynamic", 0, np.arange(21.0)), "orbit='static'"),
    (lambda: orbits.dynamic_orbit(0, seed=-1), "seed"),
    (lambda: orbits.camera_to_world(0, 0, radius=0), "radius"),
])
def test_bad_orbits(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_cameras_look_at_the_origin_and_are_rotations():
    e, a = orbits.dynamic_orbit(10.0, seed=4)
    e = np.concatenate([e, [90.0, -90.0]])  # the poles too: no singularity
    a = np.concatenate([a, [33.0, 200.0]])
    m = orbits.camera_to_world(e, a)
    r = m[:, :3, :3]
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    pos = m[:, :3, 3]
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), orbits.DEFAULT_RADIUS, atol=1e-12)
    view = -r[:, :, 2]  # OpenGL cameras look down -Z
    np.testing.assert_allclose(view, -pos / np.linalg.norm(pos, axis=1, keepdims=True), atol=1e-12)
    assert np.all(m[:, 3] == [0, 0, 0, 1])
    # the input view (azimuth 0) sits on +X at its elevation, image-right along +Y
    c = orbits.camera_to_world(10.0, 0.0)[0]
    np.testing.assert_allclose(c[:3, 3], orbits.DEFAULT_RADIUS * np.array(
        [math.cos(math.radians(10)), 0, math.sin(math.radians(10))]), atol=1e-12)
    np.testing.assert_allclose(c[:3, 0], [0, 1, 0], atol=1e-12)
    assert c[2, 1] > 0  # image-up points towards +Z
    # azimuth grows counter-clockwise seen from above: 90° puts the camera on +Y
    np.testing.assert_allclose(orbits.camera_to_world(0.0, 90.0)[0, :3, 3], [0, orbits.DEFAULT_RADIUS, 0], atol=1e-12)


def test_intrinsics_and_radius():
    k = orbits.intrinsics()
    assert k["w"] == k["h"] == 576 and k["cx"] == k["cy"] == 288.0
    assert abs(k["fl_x"] - 947.9196) < 1e-3 and k["fl_x"] == k["fl_y"]
    assert abs(k["camera_angle_x"] - 0.589921) < 1e-6
    assert abs(orbits.DEFAULT_RADIUS - 3.29139) < 1e-5
    # the frustum's half-width through the origin is exactly 1 at the default radius
    assert abs(orbits.DEFAULT_RADIUS * math.tan(k["camera_angle_x"] / 2) - 1.0) < 1e-12


def _nerfstudio_frames(doc, folder):
    """What nerfstudio's nerfstudio-data parser reads (nerfstudio/data/dataparsers/nerfstudio_dataparser.py): the
    intrinsics fl_x, fl_y, cx, cy, w, h (top level here), and per frame file_path + a 4x4 transform_matrix."""
    for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
        assert isinstance(doc[key], (int, float)), key
    assert doc["camera_model"] == "OPENCV"
    out = []
    for f in doc["frames"]:
        m = np.array(f["transform_matrix"], dtype=np.float64)
        assert m.shape == (4, 4)
        assert (folder / f["file_path"]).is_file()
        out.append((f["file_path"], m))
    return sorted(out)  # nerfstudio sorts by file name


def test_orbit_save_writes_frames_json_and_video(tmp_path):
    e, a = orbits.sine_orbit(10.0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (21, 16, 16, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (21, 16, 16), dtype=np.uint8)
    orbit = orbits.Orbit(frames, e, a, alpha=alpha)
    assert orbit.rgba_frames.shape == (21, 16, 16, 4) and orbit.cameras.shape == (21, 4, 4)
    out = tmp_path / "scene"
    orbit.save(out, video="orbit.gif")
    doc = json.loads((out / "transforms.json").read_text())
    assert doc["w"] == doc["h"] == 16 and abs(doc["camera_angle_x"] - math.radians(33.8)) < 1e-12
    parsed = _nerfstudio_frames(doc, out)
    assert [p for p, _ in parsed] == [f"images/{i:03d}.png" for i in range(21)]
    np.testing.assert_allclose(np.stack([m for _, m in parsed]), orbit.cameras, atol=0)
    assert [f["elevation_deg"] for f in doc["frames"]] == e.tolist()
    from PIL import Image

    with Image.open(out / "images" / "020.png") as im:
        assert im.mode == "RGBA"
        assert np.array_equal(np.asarray(im), orbit.rgba_frames[20])
    assert (out / "orbit.gif").is_file()
    # saving again replaces the frames; RGB when asked; no temporary folders left behind
    orbit.save(out, rgba=False, video=None)
    with Image.open(out / "images" / "000.png") as im:
        assert im.mode == "RGB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]


def test_orbit_bad_values(tmp_path):
    frames = np.zeros((21, 8, 8, 3), np.uint8)
    e, a = orbits.static_orbit()
    with pytest.raises(ValueError, match="frames"):
        orbits.Orbit(frames.astype(np.float32), e, a)
    with pytest.raises(ValueError, match="alpha"):
        orbits.Orbit(frames, e, a, alpha=np.zeros((21, 8, 7), np.uint8))
    with pytest.raises(ValueError, match="elevations"):
        orbits.Orbit(frames, e[:20], a)
    with pytest.raises(ValueError, match="video"):
        orbits.Orbit(frames, e, a).save(tmp_path / "x", video="orbit.avi")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        orbits.Orbit(frames, e, a).save(tmp_path / "file")
