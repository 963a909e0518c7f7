"""The OCR text-area score: a `TextDetector` returns text boxes (quadrilaterals) for an RGB frame; the score is the
area of their union divided by the frame's area (the SVD paper's CRAFT rule, App. C). `RapidOCRDetector` runs the
PP-OCRv4 DBNet detector that ships inside the `rapidocr-onnxruntime` wheel (offline, onnxruntime on the CPU), in
the `svdc[ocr]` extra. Any other detector (CRAFT, a cloud API) fits the protocol."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["TextDetector", "RapidOCRDetector", "text_area_ratio"]


@runtime_checkable
class TextDetector(Protocol):
    """`detect(frame)`: RGB uint8 (H, W, 3) -> text regions as an array (K, P, 2) of polygon corners (x, y) in
    pixels (K may be 0). `name` identifies the detector in the manifest."""

    name: str

    def detect(self, frame: np.ndarray) -> np.ndarray: ...


def text_area_ratio(boxes, height: int, width: int) -> float:
    """Area of the union of the polygons (clipped to the frame) / frame area; overlapping boxes count once."""
    from PIL import Image, ImageDraw

    boxes = np.asarray(boxes, np.float64)
    if boxes.size == 0:
        return 0.0
    if boxes.ndim != 3 or boxes.shape[2] != 2 or boxes.shape[1] < 3:
        raise ValueError(f"boxes: expected polygons (K, P>=3, 2), got shape {boxes.shape}")
    mask = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for poly in boxes:
        draw.polygon([(float(x), float(y)) for x, y in poly], fill=1)
    return float(np.count_nonzero(np.asarray(mask))) / float(height * width)


class RapidOCRDetector:
    """PP-OCRv4 text detection through rapidocr-onnxruntime, detection only (no angle classifier, no
    recognition). limit_side_len / limit_type: the detector's input scaling (rapidocr's defaults: the short side
    brought to 736 px; "max" with a smaller value is faster on large frames); box_thresh: the minimum box score."""

    name = "rapidocr-ppocrv4-det"

    def __init__(self, limit_side_len: int = 736, limit_type: str = "min", box_thresh: float = 0.5,
                 threads: int = -1):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as e:
            raise ImportError("RapidOCRDetector needs rapidocr-onnxruntime: pip install 'svdc-video[ocr]' "
                              f"(or pip install rapidocr-onnxruntime); import failed with: {e}") from None
        if limit_type not in ("min", "max"):
            raise ValueError(f"limit_type: expected 'min' or 'max', got {limit_type!r}")
        if not (isinstance(limit_side_len, int) and limit_side_len >= 32):
            raise ValueError(f"limit_side_len: expected an int >= 32, got {limit_side_len!r}")
        self.box_thresh = float(box_thresh)
        self._engine = RapidOCR(det_limit_side_len=limit_side_len, det_limit_type=limit_type,
                                det_box_thresh=self.box_thresh, intra_op_num_threads=threads,
                                use_cls=False, use_rec=False)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected RGB uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        bgr = np.ascontiguousarray(frame[:, :, ::-1])  # rapidocr takes OpenCV's channel order
        result, _ = self._engine(bgr, use_det=True, use_cls=False, use_rec=False, box_thresh=self.box_thresh)
        if not result:
            return np.zeros((0, 4, 2))
        return np.asarray(result, np.float64).reshape(len(result), -1, 2)  # (K, 4, 2) corners
