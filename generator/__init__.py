"""Coefficients -> face images.

``layout`` defines the 286-value coefficient record every generator takes, ``sampler`` draws
records (with identity mixup) deterministically from (seed, class, image), and ``registry``
maps generator names to backends that render batches of records.
"""

if __name__ != "synthface.generator":  # the folder is on sys.path when Python runs from the repository root
    raise ImportError("generator/ is the package synthface.generator; import it as synthface.generator (pip install -e .)")

from .layout import TOTAL as NUM_COEFFS  # noqa: F401
from .registry import Backend, RenderResult, available, create, get  # noqa: F401
from .sampler import SampleBatch, Sampler, SamplingConfig  # noqa: F401
