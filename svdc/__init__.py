"""svdc: Stable Video Diffusion in C and CUDA with a NumPy front end (no PyTorch at run time)."""
from ._native import _C
from .runtime import devices, info
from . import weights
from .models.image_encoder import ImageEncoder
from .models.unet import UNet

__version__ = _C.build_info()["version"]

SvdcError = _C.SvdcError
ShapeError = _C.ShapeError
CheckpointError = _C.CheckpointError
DeviceUnavailableError = _C.DeviceUnavailableError

__all__ = [
    "__version__",
    "devices",
    "info",
    "SvdcError",
    "ShapeError",
    "CheckpointError",
    "DeviceUnavailableError",
    "ImageEncoder",
    "UNet",
]
