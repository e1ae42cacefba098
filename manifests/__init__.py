"""YAML build recipes for the paper's setups; ``synth build --config NAME`` finds them by name."""
