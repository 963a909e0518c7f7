"""svdc: Stable Video Diffusion in C and CUDA with a NumPy front end (no PyTorch at run time)."""
from ._native import _C
from .runtime import devices, info
from . import weights
from .random import Generator
from .video import Video, export_to_video
from .pipelines.image_to_video import ImageToVideo
from .models.image_encoder import ImageEncoder
from .models.text_encoder import TextEncoder
from .models.unet import UNet
from .models.vae import VAE

__version__ = _C.build_info()["version"]

SvdcError = _C.SvdcError
ShapeError = _C.ShapeError
CheckpointError = _C.CheckpointError
DeviceUnavailableError = _C.DeviceUnavailableError

__all__ = [
    "__version__",
    "devices",
    "info",
    "Generator",
    "Video",
    "export_to_video",
    "ImageToVideo",
    "SvdcError",
    "ShapeError",
    "CheckpointError",
    "DeviceUnavailableError",
    "ImageEncoder",
    "TextEncoder",
    "UNet",
    "VAE",
]
