#!/usr/bin/env bash
# Build a small synthetic face dataset, check it, and read it back with plain webdataset.
# Run from anywhere after `pip install -e .`; OUT defaults to ./data/quickstart.
set -euo pipefail
OUT=${1:-data/quickstart}
HERE=$(cd "$(dirname "$0")" && pwd)

# 200 identities x 10 images, identity mixup as in the paper, 112x112 JPEG, 500 images per shard.
# Re-running this line resumes an interrupted build; a different config needs --overwrite.
synth build --ids 200 --per-id 10 --shard-size 500 --out "$OUT"

# Re-read every shard against manifest.json (checksums, decodable images, metadata).
synth verify "$OUT"

# What another trainer sees: images, hard labels and soft (mixup) labels.
python "$HERE/read_with_webdataset.py" "$OUT" --limit 5

# The per-sample index: one row per image, no pixels.
python - "$OUT" <<'PY'
import sys
import pyarrow.parquet as pq
t = pq.read_table(f"{sys.argv[1]}/index.parquet")
print(t.num_rows, "rows;", "columns:", ", ".join(t.column_names))
print(t.slice(0, 3).to_pylist())
PY
