"""Generates a labelled synthetic shot-boundary set: videos built from shots (Ken Burns over real photos shipped by
scikit-image, fast pans, dark shots, ffmpeg lavfi sources) joined by hard cuts, same-photo cuts, dissolves, wipes and
fades through black/white, with flashes and fast pans as traps and sensor noise before H.264 encoding.

    python benchmarks/curation/generate.py --out /tmp/set --videos 4 --seconds 25 --seed 1

Writes NAME.mp4 and NAME.json per video. Labels (0-based frame indices): `cuts` (first frame of the new shot),
`gradual` [{type, start, end}] (inclusive interval of mixed or black/white frames), `traps` [{type, start, end}]."""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 360
SHOT_TYPES = {"photo": 5, "fast": 1, "dark": 1, "lavfi": 2}
TRANSITIONS = {"cut": 5, "dissolve": 2, "fade_black": 1, "fade_white": 1, "wipe": 1, "same_photo_cut": 1}
LAVFI = ["mandelbrot=s={s}:r={r}", "life=s={s}:r={r}:mold=10:ratio=0.2", "cellauto=rule=110:s={s}:r={r}",
         "testsrc2=s={s}:r={r}", "gradients=s={s}:r={r}:speed=0.02", "sierpinski=s={s}:r={r}"]


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def load_photos() -> list[np.ndarray]:
    """The colour and grey photographs scikit-image ships in its wheel, read as files (skimage is not imported)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None:
        sys.exit("the photo shots need scikit-image's sample images: pip install scikit-image")
    data = Path(spec.submodule_search_locations[0]) / "data"
    names = ["astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "rocket.jpg", "retina.jpg",
             "motorcycle_left.png", "ihc.png", "camera.png", "moon.png", "brick.png", "grass.png", "gravel.png",
             "coins.png", "page.png", "color.png"]
    photos = []
    for name in names:
        img = cv2.imread(str(data / name), cv2.IMREAD_COLOR)
        if img is not None:
            photos.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32))
    if len(photos) < 4:
        sys.exit(f"found only {len(photos)} sample photos under {data}")
    return photos


class KenBurns:
    """A crop window of the output aspect moving along a line and zooming over a photo."""

    def __init__(self, photo, rng, n, zoom=(0.55, 0.9), sweep=None, brightness=1.0):
        self.photo, self.n, self.brightness = photo, n, brightness
        ph, pw = photo.shape[:2]
        aspect = WIDTH / HEIGHT
        full_w = min(pw, ph * aspect)
        z0, z1 = rng.uniform(*zoom, size=2)
        self.w0, self.w1 = z0 * full_w, z1 * full_w
        def centre(w, along=None):
            h = w / aspect
            lo_x, hi_x, lo_y, hi_y = w / 2, pw - w / 2, h / 2, ph - h / 2
            x = rng.uniform(lo_x, hi_x) if along is None else along
            return np.array([np.clip(x, lo_x, hi_x), rng.uniform(lo_y, hi_y)])
        if sweep is None:
            self.c0, self.c1 = centre(self.w0), centre(self.w1)
        else:  # a fast pan: the centre sweeps `sweep` of the photo width within the shot
            start = rng.uniform(0.2, 0.8 - sweep) * pw if sweep < 0.6 else 0.2 * pw
            self.c0, self.c1 = centre(self.w0, start), centre(self.w1, start + sweep * pw)
            self.w1 = self.w0

    def frame(self, i):
        a = i / max(1, self.n - 1)
        w = self.w0 + (self.w1 - self.w0) * a
        c = self.c0 + (self.c1 - self.c0) * a
        s = w / WIDTH  # photo pixels per output pixel
        m = np.array([[s, 0, c[0] - s * WIDTH / 2], [0, s, c[1] - s * HEIGHT / 2]], np.float32)
        out = cv2.warpAffine(self.photo, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
        return out * self.brightness


class Lavfi:
    def __init__(self, source, fps, n, rng):
        spec = source.format(s=f"{WIDTH}x{HEIGHT}", r=fps)
        skip = int(rng.integers(0, 3 * fps))  # start a little way into the source so shots differ
        cmd = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", spec, "-frames:v", str(n + skip),
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        raw = subprocess.run(cmd, check=True, capture_output=True).stdout
        frames = np.frombuffer(raw, np.uint8).reshape(-1, HEIGHT, WIDTH, 3)[skip:]
        if len(frames) < n:  # sources that stop early: hold the last frame
            frames = np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), 0)])
        self.frames = frames

    def frame(self, i):
        return self.frames[i].astype(np.float32)


def pick(rng, weights: dict) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def make_video(path: Path, seed: int, seconds: float, photos) -> dict:
    rng = np.random.default_rng(seed)
    fps = int(rng.choice([24, 25, 30]))
    target = int(seconds * fps)
    labels = {"fps": fps, "width": WIDTH, "height": HEIGHT, "cuts": [], "gradual": [], "traps": []}
    noise = [rng.normal(0, 2.0, (HEIGHT, WIDTH, 3)).astype(np.float32) for _ in range(8)]
    proc = subprocess.Popen([ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                             "-s", f"{WIDTH}x{HEIGHT}", "-r", str(fps), "-i", "-", "-c:v", "libx264",
                             "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(path)],
                            stdin=subprocess.PIPE)
    written = 0

    def emit(img):
        nonlocal written
        img = np.clip(img + noise[written % 8], 0, 255).astype(np.uint8)
        proc.stdin.write(img.tobytes())
        written += 1

    def new_shot(prev_photo=None):
        n = int(rng.uniform(1.2, 4.5) * fps)
        kind = "photo" if prev_photo is not None else pick(rng, SHOT_TYPES)
        photo_index = prev_photo if prev_photo is not None else int(rng.integers(len(photos)))
        if kind == "photo":
            return KenBurns(photos[photo_index], rng, n), n, kind, photo_index
        if kind == "fast":
            return KenBurns(photos[photo_index], rng, n, zoom=(0.35, 0.5), sweep=0.6), n, kind, photo_index
        if kind == "dark":
            return KenBurns(photos[photo_index], rng, n, brightness=0.18), n, kind, photo_index
        return Lavfi(LAVFI[int(rng.integers(len(LAVFI)))], fps, n, rng), n, kind, None

    shot, n, kind, photo = new_shot()
    pos = 0  # frames of the current shot already written
    while True:
        # the current shot runs until the transition takes over its tail
        transition = pick(rng, TRANSITIONS) if written + n < target else None
        if transition == "same_photo_cut" and photo is None:
            transition = "cut"
        if transition in ("dissolve", "wipe"):
            overlap = int(rng.integers(8, 31))
        elif transition in ("fade_black", "fade_white"):
            fade_out, hold, fade_in = int(rng.integers(6, 21)), int(rng.integers(0, 6)), int(rng.integers(6, 21))
            overlap = fade_out = min(fade_out, n - pos - 2)
        else:
            overlap = 0
        body_end = max(pos, n - overlap)
        flash_at = None
        if n > 30 and rng.random() < 0.15:
            flash_at = int(rng.integers(8, max(9, body_end - 12)))
        if kind == "fast":
            labels["traps"].append({"type": "fast_pan", "start": written, "end": written + body_end - pos - 1})
        for i in range(pos, body_end):
            img = shot.frame(i)
            if flash_at is not None and flash_at <= i < flash_at + 3:
                a = (0.85, 0.55, 0.25)[i - flash_at]
                if i == flash_at:
                    labels["traps"].append({"type": "flash", "start": written, "end": written + 2})
                img = img * (1 - a) + 255 * a
            emit(img)
        if transition is None:
            break
        nxt, n2, kind2, photo2 = new_shot(photo if transition == "same_photo_cut" else None)
        if transition in ("cut", "same_photo_cut"):
            labels["cuts"].append(written)
            pos2 = 0
        elif transition in ("dissolve", "wipe"):
            overlap = min(overlap, n2 - 2, n - body_end)
            start = written
            for j in range(overlap):
                a = (j + 1) / (overlap + 1)
                img_a, img_b = shot.frame(body_end + j), nxt.frame(j)
                if transition == "dissolve":
                    img = img_a * (1 - a) + img_b * a
                else:
                    img = img_a.copy()
                    if seed % 2:
                        edge = int(round(a * WIDTH))
                        img[:, :edge] = img_b[:, :edge]
                    else:
                        edge = int(round(a * HEIGHT))
                        img[:edge] = img_b[:edge]
                emit(img)
            labels["gradual"].append({"type": transition, "start": start, "end": written - 1})
            pos2 = overlap
        else:
            colour = 0.0 if transition == "fade_black" else 255.0
            start = written
            # the fade-out replaces the last frames of the shot, the fade-in the first frames of the next
            for j in range(fade_out):
                a = (j + 1) / fade_out
                emit(shot.frame(body_end + j) * (1 - a) + colour * a)
            for _ in range(hold):
                emit(np.full((HEIGHT, WIDTH, 3), colour, np.float32))
            fade_in = min(fade_in, n2 - 2)
            for j in range(fade_in):
                a = 1 - (j + 1) / (fade_in + 1)
                emit(nxt.frame(j) * (1 - a) + colour * a)
            labels["gradual"].append({"type": transition, "start": start, "end": written - 1})
            pos2 = fade_in
        shot, n, kind, photo, pos = nxt, n2, kind2, photo2, pos2
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}")
    labels["num_frames"] = written
    return labels


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=0, help="video k uses seed*1000+k")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    photos = load_photos()
    cv2.setNumThreads(1)
    for k in range(args.videos):
        name = f"s{args.seed}_v{k:02d}"
        labels = make_video(args.out / f"{name}.mp4", args.seed * 1000 + k, args.seconds, photos)
        (args.out / f"{name}.json").write_text(json.dumps(labels))
        print(f"{name}: {labels['num_frames']} frames at {labels['fps']} fps, {len(labels['cuts'])} cuts, "
              f"{len(labels['gradual'])} gradual, {len(labels['traps'])} traps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
