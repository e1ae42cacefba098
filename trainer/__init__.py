"""A lightweight ArcFace trainer for synthface shards, with domain mixup and LFW-protocol evaluation."""

if __name__ != "synthface.trainer":  # the folder is on sys.path when Python runs from the repository root
    raise ImportError("trainer/ is the package synthface.trainer; import it as synthface.trainer (pip install -e .)")
