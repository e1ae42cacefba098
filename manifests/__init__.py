"""YAML build recipes for the paper's setups; ``synth build --config NAME`` finds them by name."""

if __name__ != "synthface.manifests":  # the folder is on sys.path when Python runs from the repository root
    raise ImportError("manifests/ is the package synthface.manifests; import it as synthface.manifests (pip install -e .)")
