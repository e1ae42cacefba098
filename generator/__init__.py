"""Coefficients -> face images.

``layout`` defines the 286-value coefficient record every generator takes, ``sampler`` draws
records (with identity mixup) deterministically from (seed, class, image), and ``registry``
maps generator names to backends that render batches of records.
"""

from .layout import TOTAL as NUM_COEFFS  # noqa: F401
from .registry import Backend, RenderResult, available, create, get  # noqa: F401
from .sampler import SampleBatch, Sampler, SamplingConfig  # noqa: F401
