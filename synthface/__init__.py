"""synthface: synthetic face-recognition datasets (SynFace) as deterministic WebDataset shards.

The code lives in three packages with one job each: ``generator`` (coefficients -> images),
``pipeline`` (config -> plan -> Ray workers -> shards, manifest, index) and ``trainer``
(shards -> ArcFace model -> verification). This package only holds what they share:
the version, the error type and the ``synth`` command line.
"""

__version__ = "0.1.0"
