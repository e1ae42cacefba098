"""synthface: synthetic face-recognition datasets (SynFace) as deterministic WebDataset shards.

The code lives in three sub-packages with one job each: ``synthface.generator`` (coefficients ->
images), ``synthface.pipeline`` (config -> plan -> Ray workers -> shards, manifest, index) and
``synthface.trainer`` (shards -> ArcFace model -> verification), plus the build recipes in
``synthface.manifests``. Their folders sit at the top of the repository (``generator/`` ...; see
``package-dir`` in pyproject.toml). The modules here hold only what they share: the version, the
error type, option parsing and the ``synth`` command line.
"""

__version__ = "0.1.0"
