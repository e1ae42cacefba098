"""A lightweight ArcFace trainer for synthface shards, with domain mixup and LFW-protocol evaluation."""
