"""svdc: Stable Video Diffusion in C and CUDA with a NumPy front end (no PyTorch at run time)."""
from ._native import _C
from . import _fork  # noqa: F401  (fork safety: registers the child's one-thread reset)
from .runtime import devices, info
from . import weights
from .random import Generator
from .tokenizer import CLIPTokenizer
from .video import Video
from .utils import export_to_video
from .pipelines.image_to_video import ImageToVideo
from .pipelines.multiview import MultiView
from .orbits import Orbit
from .pipelines.text_to_image import TextToImage
from .pipelines.text_to_video import TextToVideo, TextToVideoOutput
from .pipelines.compat import StableVideoDiffusionPipeline, StableVideoDiffusionPipelineOutput
from .pipelines.compat_sd import StableDiffusionPipeline, StableDiffusionPipelineOutput
from .schedules import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                        EulerDiscreteScheduler)
from .models.image_encoder import ImageEncoder
from .models.text_encoder import TextEncoder
from .models.unet import UNet
from .models.vae import VAE

from ._version import __version__

SvdcError = _C.SvdcError
ShapeError = _C.ShapeError
CheckpointError = _C.CheckpointError
DeviceUnavailableError = _C.DeviceUnavailableError

__all__ = [
    "__version__",
    "devices",
    "info",
    "Generator",
    "CLIPTokenizer",
    "Video",
    "export_to_video",
    "ImageToVideo",
    "MultiView",
    "Orbit",
    "TextToImage",
    "TextToVideo",
    "TextToVideoOutput",
    "StableVideoDiffusionPipeline",
    "StableVideoDiffusionPipelineOutput",
    "StableDiffusionPipeline",
    "StableDiffusionPipelineOutput",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DDIMScheduler",
    "DPMSolverMultistepScheduler",
    "SvdcError",
    "ShapeError",
    "CheckpointError",
    "DeviceUnavailableError",
    "ImageEncoder",
    "TextEncoder",
    "UNet",
    "VAE",
]
