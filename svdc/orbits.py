"""SV3D camera orbits (the 21 (elevation, azimuth) pairs a multi-view run is conditioned on) and their export as
cameras: OpenGL camera-to-world matrices and a transforms.json that nerfstudio and instant-ngp read directly.

Conventions (docs/workflows/multiview.md): angles in degrees; the input view is the LAST frame (index 20) at azimuth
0; azimuth grows counter-clockwise about +Z seen from above, with the input camera on +X; polar = 90° − elevation.
Sources: Stability-AI/generative-models scripts/sampling/simple_video_sample.py (static and user orbits),
scripts/demo/sv3d_helpers.py (dynamic orbit), ComfyUI comfy_extras/nodes_stable3d.py (its orbit), the SV3D paper
App. B (FoV 33.8°, cameras looking at the origin) and App. G.2 (a ±30° sine orbit reconstructs best)."""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

from ._validate import check_number, check_path

NUM_FRAMES = 21  # SV3D generates 21 views; the last one is the input view
SIZE = 576  # SV3D's training resolution
FOV_DEG = 33.8  # the renders' field of view (SV3D paper App. B)
# Camera distance whose frustum cross-section through the origin spans exactly [-1, 1] (the paper publishes none).
DEFAULT_RADIUS = 1.0 / math.tan(math.radians(FOV_DEG / 2.0))
DEFAULT_ELEVATION = 10.0  # the sgm script's default
ORBITS = ("static", "sine", "dynamic", "comfyui")


# --- argument checks -------------------------------------------------------------------------------------------
def _angles(name: str, value, length: int | None = None) -> np.ndarray:
    """A finite float64 vector of `length` (one value broadcast) from a number or a sequence."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number or a list of numbers, got {type(value).__name__} {value!r:.60}") \
            from None
    if arr.ndim > 1:
        raise ValueError(f"{name}: expected a number or a flat list, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite angles in degrees, got {arr.tolist() if arr.ndim else float(arr)}")
    if length is not None:
        if arr.ndim == 0 or arr.shape == (1,):
            arr = np.full(length, float(arr.reshape(())), dtype=np.float64)
        elif arr.shape != (length,):
            raise ValueError(f"{name}: expected 1 value or {length} values (one per frame), got {arr.shape[0]}")
    return arr


def _elevations(name: str, value, length: int = NUM_FRAMES) -> np.ndarray:
    e = np.atleast_1d(_angles(name, value))
    bad = np.abs(e) > 90.0
    if np.any(bad):
        raise ValueError(f"{name}: elevations must lie in [-90, 90] degrees, got {e[bad].tolist()}")
    return _angles(name, value, length)


# --- orbit builders: each returns (elevations_deg, azimuths_deg), two float64 arrays of 21 -----------------------
def static_orbit(elevation=DEFAULT_ELEVATION) -> tuple[np.ndarray, np.ndarray]:
    """The sgm script's default: one elevation (or 21), azimuths 360·(k+1)/21 for k = 0..19 and 0 for frame 20."""
    azimuths = np.linspace(0.0, 360.0, NUM_FRAMES + 1)[1:] % 360.0  # float64, as the script computes them
    return _elevations("elevation", elevation), azimuths


def user_orbit(elevations, azimuths) -> tuple[np.ndarray, np.ndarray]:
    """User lists as the sgm script takes them: 1 or 21 elevations; 21 azimuths, each made relative to the last
    frame's, (a_i − a_20) mod 360 (the script's `[:-1].sort()` sorts a copy, so the order is kept)."""
    e = _elevations("elevations", elevations)
    a = _angles("azimuths", azimuths)
    if a.ndim == 0 or a.shape != (NUM_FRAMES,):
        got = 1 if a.ndim == 0 else a.shape[0]
        raise ValueError(f"azimuths: expected {NUM_FRAMES} values (one per frame, the input view last), got {got}")
    return e, (a - a[-1]) % 360.0


def sine_orbit(elevation=0.0, amplitude=30.0, periods: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Elevation = elevation + amplitude·sin(2π·periods·(k+1)/21), azimuths of the static orbit: frame 20 is back at
    the input elevation. ±30° ("Sine-30") gave the best 3-D reconstructions in the SV3D paper (App. G.2)."""
    e0 = float(_elevations("elevation", elevation, 1)[0])
    amp = float(_angles("amplitude", amplitude))
    if isinstance(periods, bool) or not isinstance(periods, (int, np.integer)) or periods < 1:
        raise ValueError(f"periods: expected an int >= 1, got {periods!r}")
    k = np.arange(1, NUM_FRAMES + 1, dtype=np.float64)
    e = e0 + amp * np.sin(2.0 * np.pi * periods * k / NUM_FRAMES)
    return _elevations(f"elevation {e0:g} ± amplitude {amp:g}", e), static_orbit(0.0)[1]


def dynamic_orbit(elevation=0.0, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The sgm demo's dynamic orbit (scripts/demo/sv3d_helpers.py gen_dynamic_loop), drawn from its own
    np.random.RandomState(seed) instead of the global state, so it is reproducible by seed: over an 84-step loop,
    elevation = elevation + 84 sinusoids (1-4 whole cycles, amplitude U(0.5, 10), phase 0 or π), circularly smoothed
    (width 5) and redrawn until every |value| < 90; azimuth = cumulative U(0, 2) steps scaled to end just under 360;
    every 4th value kept, then rolled so the input view (azimuth 0) is the last frame."""
    e0 = float(_elevations("elevation", elevation, 1)[0])
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed: expected an int >= 0 or None, got {seed!r}")
    rng = np.random.RandomState(seed)
    loop = 84
    while True:
        elev = np.full(loop, e0)
        for _ in range(loop):
            cycles = rng.randint(1, 5)  # 1..4 whole cycles over the loop
            amp = rng.uniform(0.5, 10)
            phase = rng.choice([0, np.pi])
            elev += np.sin(np.linspace(0, cycles * 2 * np.pi, loop, endpoint=False) + phase) * amp
        steps = rng.uniform(0, 2, loop - 1)
        scale = (360 - (360 / loop) * rng.uniform(0, 2)) / np.sum(steps)
        azim = np.insert(np.cumsum(steps * scale), 0, 0.0)
        smooth = _circular_mean(elev, 5)
        if np.max(np.abs(smooth)) < 90:
            break
    keep = loop // NUM_FRAMES
    return np.roll(smooth[::keep], -1), np.roll(azim[::keep], -1)


def _circular_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average of `width` with the sequence wrapped around at both ends (a closed loop)."""
    padded = np.concatenate([x[-width:], x, x[:width]])  # (n + 2·width,)
    return np.convolve(padded, np.ones(width) / width, mode="same")[width:-width]


def comfyui_orbit(elevation=0.0) -> tuple[np.ndarray, np.ndarray]:
    """ComfyUI's SV3D_Conditioning orbit: one elevation (its default 0), azimuths 0, 18, ..., 360 (mod 360), so
    frames 0 and 20 are both the input view."""
    step = 360.0 / (NUM_FRAMES - 1)
    return _elevations("elevation", elevation), (np.arange(NUM_FRAMES) * step) % 360.0


def build_orbit(orbit: str = "static", elevations=None, azimuths=None, seed: int | None = None):
    """(elevations_deg, azimuths_deg) for a named orbit. elevations: one value, the input view's elevation (default
    10° for every orbit), or 21 values (static orbit only); azimuths: 21 values (static orbit only). `seed` draws
    the dynamic orbit."""
    if orbit not in ORBITS:
        raise ValueError(f"orbit: expected one of {ORBITS}, got {orbit!r}")
    if azimuths is not None:
        if orbit != "static":
            raise ValueError(f"azimuths: user azimuths need orbit='static', got orbit={orbit!r}")
        return user_orbit(DEFAULT_ELEVATION if elevations is None else elevations, azimuths)
    if elevations is not None and orbit != "static" and np.ndim(elevations) > 0 and np.size(elevations) != 1:
        raise ValueError(f"elevations: orbit={orbit!r} takes one elevation (the input view's), got "
                         f"{np.size(elevations)} values")
    if orbit == "static":
        return static_orbit(_elevations("elevations", DEFAULT_ELEVATION if elevations is None else elevations))
    e = float(_elevations("elevations", DEFAULT_ELEVATION if elevations is None else elevations, 1)[0])
    if orbit == "sine":
        return sine_orbit(e)
    if orbit == "dynamic":
        return dynamic_orbit(e, seed)
    return comfyui_orbit(e)


def polars_azimuths_rad(elevations_deg, azimuths_deg) -> tuple[np.ndarray, np.ndarray]:
    """What sv3d_p is conditioned on: polar = deg2rad(90 − elevation), azimuth = deg2rad(azimuth), float64."""
    return np.deg2rad(90.0 - np.asarray(elevations_deg, np.float64)), np.deg2rad(np.asarray(azimuths_deg, np.float64))


# --- cameras ---------------------------------------------------------------------------------------------------
def camera_to_world(elevations_deg, azimuths_deg, radius: float = DEFAULT_RADIUS) -> np.ndarray:
    """(N, 4, 4) float64 OpenGL/Blender camera-to-world matrices (columns right | up | back | position; the camera
    looks down −Z at the origin, world up +Z): position r·(cos e cos a, cos e sin a, sin e), right (−sin a, cos a, 0)
    (no singularity at the poles). For OpenCV/COLMAP multiply on the right by diag(1, −1, −1, 1)."""
    e = np.deg2rad(_angles("elevations", elevations_deg))
    a = np.deg2rad(_angles("azimuths", azimuths_deg))
    if e.size > 1 and a.size > 1 and e.size != a.size:
        raise ValueError(f"azimuths: expected 1 value or {e.size} (one per elevation), got {a.size}")
    e, a = np.broadcast_arrays(np.atleast_1d(e), np.atleast_1d(a))
    r = check_number("radius", radius, 0.0, strict=True)
    ce, se, ca, sa = np.cos(e), np.sin(e), np.cos(a), np.sin(a)
    m = np.zeros(e.shape + (4, 4))
    m[:, :3, 0] = np.stack([-sa, ca, np.zeros_like(a)], -1)  # right
    m[:, :3, 1] = np.stack([-se * ca, -se * sa, ce], -1)  # up
    m[:, :3, 2] = np.stack([ce * ca, ce * sa, se], -1)  # back (the camera looks the other way, at the origin)
    m[:, :3, 3] = r * m[:, :3, 2]
    m[:, 3, 3] = 1.0
    return m


def intrinsics(width: int = SIZE, height: int = SIZE, fov_deg: float = FOV_DEG) -> dict:
    """Pinhole intrinsics of a square-pixel camera whose horizontal field of view is fov_deg."""
    fx = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return {"camera_angle_x": math.radians(fov_deg), "fl_x": fx, "fl_y": fx, "cx": width / 2.0, "cy": height / 2.0,
            "w": int(width), "h": int(height)}


def transforms_json(elevations_deg, azimuths_deg, file_paths, width: int = SIZE, height: int = SIZE,
                    radius: float = DEFAULT_RADIUS, fov_deg: float = FOV_DEG) -> dict:
    """The transforms.json dict for nerfstudio (`ns-train nerfacto --data folder`) and instant-ngp: top-level
    intrinsics (fl_x, fl_y, cx, cy, w, h and camera_angle_x), camera_model OPENCV without distortion, aabb_scale 1,
    and per frame file_path + OpenGL camera-to-world transform_matrix (+ svdc's elevation_deg / azimuth_deg, which
    both trainers ignore)."""
    c2w = camera_to_world(elevations_deg, azimuths_deg, radius)
    if len(file_paths) != len(c2w):
        raise ValueError(f"file_paths: expected {len(c2w)} paths (one per camera), got {len(file_paths)}")
    frames = [{"file_path": str(p), "transform_matrix": m.tolist(), "elevation_deg": float(e), "azimuth_deg": float(a)}
              for p, m, e, a in zip(file_paths, c2w, np.broadcast_to(elevations_deg, len(c2w)),
                                    np.broadcast_to(azimuths_deg, len(c2w)))]
    return {**intrinsics(width, height, fov_deg), "camera_model": "OPENCV", "aabb_scale": 1, "frames": frames}


# --- the result of a multi-view run ----------------------------------------------------------------------------
@dataclass
class Orbit:
    """The views of one object around an orbit: ``frames`` uint8 (21, H, W, 3) (the input view last), ``alpha``
    uint8 (21, H, W) or None, and per frame ``elevations`` / ``azimuths`` in degrees (azimuth relative to the input
    view). ``cameras`` gives the OpenGL camera-to-world matrices, ``save(folder)`` the files a NeRF/3DGS trainer
    reads."""

    frames: np.ndarray
    elevations: np.ndarray
    azimuths: np.ndarray
    alpha: np.ndarray | None = None
    radius: float = DEFAULT_RADIUS
    fov_deg: float = FOV_DEG
    fps: float = 7.0

    def __post_init__(self):
        f = np.asarray(self.frames)
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
            raise ValueError(f"frames: expected uint8 (N, H, W, 3), got {f.dtype} {f.shape}")
        n = f.shape[0]
        self.frames = f
        self.elevations = _elevations("elevations", self.elevations, n)
        self.azimuths = _angles("azimuths", self.azimuths, n)
        if self.alpha is not None:
            al = np.asarray(self.alpha)
            if al.dtype != np.uint8 or al.shape != f.shape[:3]:
                raise ValueError(f"alpha: expected uint8 {f.shape[:3]}, got {al.dtype} {al.shape}")
            self.alpha = al

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def __repr__(self) -> str:
        n, h, w = self.frames.shape[:3]
        return (f"svdc.Orbit({n} views, {w}x{h}, elevations {self.elevations.min():g}..{self.elevations.max():g} deg, "
                f"alpha={'yes' if self.alpha is not None else 'no'})")

    @property
    def rgba_frames(self) -> np.ndarray:
        """uint8 (N, H, W, 4); opaque when there is no alpha."""
        a = self.alpha if self.alpha is not None else np.full(self.frames.shape[:3], 255, np.uint8)
        return np.concatenate([self.frames, a[..., None]], axis=-1)

    @property
    def cameras(self) -> np.ndarray:
        """(N, 4, 4) OpenGL camera-to-world matrices (see camera_to_world)."""
        return camera_to_world(self.elevations, self.azimuths, self.radius)

    @property
    def intrinsics(self) -> dict:
        h, w = self.frames.shape[1:3]
        return intrinsics(w, h, self.fov_deg)

    def transforms(self, file_paths=None) -> dict:
        """The transforms.json dict (file paths default to those save() writes)."""
        paths = file_paths if file_paths is not None else [f"images/{i:03d}.png" for i in range(len(self))]
        h, w = self.frames.shape[1:3]
        return transforms_json(self.elevations, self.azimuths, paths, w, h, self.radius, self.fov_deg)

    def save(self, folder, rgba: bool = True, video: str | None = "orbit.mp4") -> str:
        """Writes images/000.png ... (RGBA when `rgba` and an alpha exists, else RGB), transforms.json and, unless
        video is None, the orbit as a video (.mp4, .gif or .webp) into `folder`. Everything is written to a
        temporary folder next to it first, so an interrupted save never leaves a half-written folder under the
        final name; an existing folder's other files are kept, its images/ and transforms.json replaced."""
        from PIL import Image

        from .video import Video

        folder = os.path.abspath(check_path(folder, "folder"))
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError(f"folder: {folder!r} exists and is not a folder")
        if video is not None and not str(video).lower().endswith((".mp4", ".gif", ".webp")):
            raise ValueError(f"video: expected a file name ending in .mp4, .gif or .webp (or None), got {video!r}")
        parent = os.path.dirname(folder)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".orbit-", dir=parent)
        try:
            os.makedirs(os.path.join(tmp, "images"))
            pixels = self.rgba_frames if (rgba and self.alpha is not None) else self.frames
            mode = "RGBA" if pixels.shape[-1] == 4 else "RGB"
            doc = self.transforms()
            for frame, entry in zip(pixels, doc["frames"]):
                Image.fromarray(frame, mode).save(os.path.join(tmp, entry["file_path"]))
            with open(os.path.join(tmp, "transforms.json"), "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=2)
            if video is not None:
                Video(self.frames, fps=self.fps).save(os.path.join(tmp, str(video)))
            os.makedirs(folder, exist_ok=True)
            for name in os.listdir(tmp):
                dst = os.path.join(folder, name)
                if os.path.isdir(dst):
                    shutil.rmtree(dst)
                os.replace(os.path.join(tmp, name), dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder
