"""The OCR text-area ratio: the union-area arithmetic exactly, and rapidocr's PP-OCRv4 detector (svdc[ocr], installed
in CI) on Pillow-rendered text: the detected ratio is within 20 % of the rendered text's box area; blank and
textured frames without text give ~0."""
from __future__ import annotations

import os

import numpy as np
import pytest

from svdc.curation.ocr import RapidOCRDetector, text_area_ratio


def test_union_area_counts_overlaps_once():
    a = [[10, 10], [30, 10], [30, 20], [10, 20]]  # 20 x 10 (Pillow fills both edges: 21 x 11 pixels)
    b = [[20, 10], [40, 10], [40, 20], [20, 20]]  # overlaps a by half
    ratio = text_area_ratio(np.array([a, b], float), 50, 100)
    assert ratio == pytest.approx(31 * 11 / 5000)
    assert text_area_ratio(np.zeros((0, 4, 2)), 50, 100) == 0.0
    with pytest.raises(ValueError, match="polygons"):
        text_area_ratio(np.zeros((2, 2)), 50, 100)


@pytest.fixture(scope="module")
def detector():
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise  # the OCR extra is part of .[test]: never skipped in CI
        pytest.skip("rapidocr-onnxruntime (svdc[ocr]) is not installed")
    return RapidOCRDetector()


def _frame_with_text(text: str, size: int, h: int = 180, w: int = 320):
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (w, h), (40, 90, 140))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    draw.text((20, h // 3), text, fill=(255, 255, 255), font=font)
    box = draw.textbbox((20, h // 3), text, font=font)  # the rendered glyphs' bounding box
    return np.asarray(img), (box[2] - box[0]) * (box[3] - box[1]) / (h * w)


@pytest.mark.parametrize("text,size", [("HELLO WORLD 2026", 28), ("Caption text", 20)])
def test_rendered_text_area(detector, text, size):
    frame, truth = _frame_with_text(text, size)
    ratio = text_area_ratio(detector.detect(frame), *frame.shape[:2])
    assert abs(ratio - truth) <= 0.2 * truth, (ratio, truth)


def test_no_text_gives_zero(detector):
    blank = np.full((180, 320, 3), (40, 90, 140), np.uint8)
    assert text_area_ratio(detector.detect(blank), 180, 320) < 1e-3
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.repeat(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), 20, 0), 20, 1)
    assert text_area_ratio(detector.detect(smooth), 180, 320) < 0.01


def test_bad_frame(detector):
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_missing_extra_is_a_clear_message(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'svdc-video\[ocr\]'"):
        RapidOCRDetector()
