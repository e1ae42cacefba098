"""Config -> deterministic plan -> Ray workers -> shards, manifest and index."""
