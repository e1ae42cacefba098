"""Remote outputs through fsspec: a real S3-compatible server on loopback, and memory:// in-process."""

from __future__ import annotations

import json

import pytest
import webdataset as wds

from synthface.errors import SynthError
from synthface.pipeline import verify
from synthface.pipeline.build import RunOptions, run
from synthface.pipeline.config import BuildConfig
from synthface.pipeline.storage import Storage
from tests.conftest import SHAPES, synth, synth_env

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_endpoint(monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    fs.mkdir("synth-bucket")
    try:
        yield endpoint, fs
    finally:
        server.stop()


def test_build_to_s3_and_verify(s3_endpoint, tmp_path):
    endpoint, fs = s3_endpoint
    url = "s3://synth-bucket/datasets/tiny"
    # Endpoint and credentials reach the Ray workers through the environment.
    env = synth_env(AWS_ENDPOINT_URL=endpoint, **CREDENTIALS)
    proc = synth("build", "--ids", "5", "--per-id", "3", "--shard-size", "6", "--generator", SHAPES,
                 "--workers", "2", "--no-progress", "--out", url, env=env)
    assert proc.returncode == 0, proc.stderr
    fs.invalidate_cache()
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(url, detail=False))
    assert names == ["index.parquet", "manifest.json",
                     *[f"synth-00000{i}.{e}" for i in range(3) for e in ("stats.json", "tar")]]
    assert not [n for n in names if ".tmp-" in n]
    man = json.loads(fs.cat_file(f"{url}/manifest.json"))
    assert man["complete"] and len(man["shards"]) == 3

    # verify, with the endpoint given as a storage option instead.
    ok = synth("verify", url, "--no-progress", "--storage-option", f"client_kwargs={{endpoint_url: {endpoint}}}",
               env=synth_env(**CREDENTIALS))
    assert ok.returncode == 0 and "ok: 3 shards, 15 samples" in ok.stdout, ok.stderr

    # The shards stream back through webdataset from the object store.
    local = tmp_path / "shard.tar"
    local.write_bytes(fs.cat_file(f"{url}/synth-000000.tar"))
    assert sum(1 for _ in wds.WebDataset(str(local), shardshuffle=False)) == 6

    # Resuming against the object store finds everything in place.
    again = synth("build", "--ids", "5", "--per-id", "3", "--shard-size", "6", "--generator", SHAPES,
                  "--workers", "2", "--no-progress", "--out", url, env=env)
    assert again.returncode == 0 and "already complete" in again.stdout, again.stderr


def test_memory_filesystem_in_process():
    """memory:// is per process: fine with --workers 0, refused with Ray workers."""
    cfg = BuildConfig(ids=4, per_id=2, shard_size=3, generator=SHAPES)
    url = "memory://synth-test/tiny"
    summary = run(cfg, RunOptions(out=url, workers=0, progress=False))
    assert summary["rendered_images"] == 8
    storage = Storage(url)
    assert {"manifest.json", "index.parquet", "synth-000002.tar"} <= set(storage.names())
    assert verify.run(url, progress=False) == {"shards": 3, "samples": 8}
    with pytest.raises(SynthError, match="memory://"):
        run(cfg, RunOptions(out=url, workers=2, progress=False))
