"""The built-in ``morphable`` generator: a procedural 3D morphable head rendered on the CPU.

Modules: ``mesh`` (mean head geometry), ``basis`` (identity, expression and appearance
components), ``model`` (assembly, built once per process), ``raster`` (component blend and
z-buffered rasteriser), ``shading`` (SH lighting and painted details), ``background`` (per-image
backgrounds and camera noise), ``render`` (the per-sample pipeline), ``backend`` (the registry entry).
"""

from .backend import MorphableBackend
from .model import build_model

__all__ = ["MorphableBackend", "build_model"]
