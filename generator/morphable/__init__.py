"""The built-in ``morphable`` generator: a procedural 3D morphable head rendered on the CPU.

Modules: ``mesh`` (mean head geometry), ``basis`` (identity, expression and appearance
components), ``model`` (assembly, built once per process), ``raster`` (component blend and
z-buffered rasteriser), ``shading`` (SH lighting and painted details), ``textures`` (detail and
sensor-noise maps), ``background`` (per-image backgrounds and camera noise), ``render`` (the
per-sample pipeline), ``simd`` (explicit vector code in the pixel pass, the blend and the
background grid), ``backend`` (the registry entry), ``kernel_cache`` (keeps the compiled-kernel
cache in step with the sources).
"""

from .kernel_cache import invalidate_stale_kernels

invalidate_stale_kernels()

from .backend import MorphableBackend  # noqa: E402
from .model import build_model  # noqa: E402

__all__ = ["MorphableBackend", "build_model"]
