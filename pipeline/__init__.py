"""Config -> deterministic plan -> Ray workers -> shards, manifest and index."""

if __name__ != "synthface.pipeline":  # the folder is on sys.path when Python runs from the repository root
    raise ImportError("pipeline/ is the package synthface.pipeline; import it as synthface.pipeline (pip install -e .)")
