"""Image files are decoded as users expect (diffusers' load_image: EXIF orientation applied), 16-bit and
transparent images too, and every decoding failure is a ValueError naming the file; the CLI turns any library's
exception into `error: ...` and exit status 2."""
import struct

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from svdc.cli import main
from svdc.image import load_image


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = 255  # white left half, black right half
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": a phone photo taken upright
    path = tmp_path / "phone.jpg"
    im.save(path, exif=exif, quality=100)
    got = load_image(str(path))
    with Image.open(path) as raw:
        expected = ImageOps.exif_transpose(raw).convert("RGB")  # diffusers.utils.load_image
    assert got.size == (20, 40)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_16_bit_png_is_scaled_not_saturated(tmp_path):
    a = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    got = np.asarray(load_image(str(path)))
    np.testing.assert_array_equal(got[..., 0], np.round(a / 257.0).astype(np.uint8))
    assert got[..., 0].mean() < 140  # a plain convert("RGB") makes almost all of it 255


def test_pa_transparency_is_composited_on_white():
    px = np.zeros((8, 8, 2), np.uint8)
    px[..., 0] = 1  # palette entry 1: red
    px[4:, :, 1] = 255  # top half fully transparent, bottom half opaque
    im = Image.frombytes("PA", (8, 8), px.tobytes())
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    got = np.asarray(load_image(im))
    assert (got[:4] == 255).all()  # white behind the transparent half
    assert (got[4:] == [255, 0, 0]).all()


def test_decompression_bomb_is_a_value_error_naming_the_file(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64*64 > 2 * 1000: Pillow refuses to decode
    with pytest.raises(ValueError, match="big.png.*too large"):
        load_image(str(path))


def test_a_plugins_odd_exception_is_a_value_error_naming_the_file(tmp_path, monkeypatch):
    path = tmp_path / "odd.png"
    Image.new("RGB", (8, 8)).save(path)

    def corrupt(self):
        raise struct.error("unpack requires a buffer of 4 bytes")  # what some corrupt TIFF/ICO files raise

    monkeypatch.setattr(ImageFile.ImageFile, "load", corrupt)
    with pytest.raises(ValueError, match="odd.png.*unpack requires"):
        load_image(str(path))


def test_cli_reports_any_library_exception_as_error_exit_2(tmp_path, monkeypatch, capsys):
    path = tmp_path / "in.png"
    Image.new("RGB", (64, 64)).save(path)
    import svdc.pipelines.image_to_video as i2v

    def boom(*args, **kwargs):
        raise RuntimeError("a third-party library failed")

    monkeypatch.setattr(i2v.ImageToVideo, "__call__", boom)
    assert main(["img2vid", str(path), "--model", "tiny", "-o", str(tmp_path / "x.mp4"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "error: RuntimeError: a third-party library failed" in err and "Traceback" not in err
