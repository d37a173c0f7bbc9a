"""Turning conversations and images into model inputs, and model text back into structure."""

from .image import ImageLoadError, load_image, smart_resize
from .processor import CitrusVInputs, CitrusVProcessor, ImageSize

__all__ = ["CitrusVInputs", "CitrusVProcessor", "ImageLoadError", "ImageSize", "load_image", "smart_resize"]
