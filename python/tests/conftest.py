"""Shared fixtures: the `hers` binary, the shipped embedding set, a PCA model trained on it
with `hers train`, and a `hers serve` started and stopped by its pid."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hers

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"


def hers_bin() -> str:
    """The `hers` binary: $HERS_BIN, else the workspace's debug build (`cargo build -p hers`)."""
    if os.environ.get("HERS_BIN"):
        return os.environ["HERS_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    exe = target / "debug" / "hers"
    if not exe.exists():
        raise RuntimeError(f"{exe} is missing: build it with `cargo build -p hers` or set HERS_BIN")
    return str(exe)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Runs `hers args…` in `cwd`; fails the test with its stderr when it fails."""
    p = subprocess.run([hers_bin(), *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"hers {' '.join(args)}: {p.stderr}"
    return p


def read_set(path: Path):
    """ids (str), labels and the n × d float32 embeddings of a parquet embedding set."""
    t = pq.read_table(path)
    ids = [str(i) for i in t.column("id").to_pylist()]
    emb = t.column("embedding").combine_chunks()
    d = len(emb[0])
    x = np.asarray(emb.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, d)
    labels = t.column("label").to_pylist() if "label" in t.column_names else [0] * len(ids)
    return ids, labels, x


def write_set(path: Path, ids, x: np.ndarray) -> None:
    """Writes an embedding set the CLI reads (id int64, label int32, embedding list<float32>)."""
    x = np.asarray(x, dtype=np.float32)
    emb = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1]).cast(pa.list_(pa.float32()))
    pq.write_table(
        pa.table(
            {
                "id": pa.array([int(i) for i in ids], pa.int64()),
                "label": pa.array([0] * len(ids), pa.int32()),
                "embedding": emb,
            }
        ),
        path,
    )


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hers")


@pytest.fixture(scope="session")
def projected(work: Path):
    """A PCA model trained by `hers train` on the shipped train set, and the shipped test set
    projected to 16-D by `hers project`: (model dir, projected parquet, ids, 16-D rows)."""
    shutil.copy(DATA / "bible-minilm-train.parquet", work / "train.parquet")
    (work / "pca.toml").write_text(
        'name = "pca-py"\n[data]\ntrain = "train.parquet"\n[model]\nstages = [64, 32, 16]\n[train]\nmethod = "pca"\n'
    )
    run("train", "--config", "pca.toml", "--out", "model", cwd=work)
    run("project", "--model", "model", "--input", str(DATA / "bible-minilm-test.parquet"), "--out", "p16.parquet", "--dim", "16", cwd=work)
    ids, _, x = read_set(work / "p16.parquet")
    return work / "model", work / "p16.parquet", ids, x


@pytest.fixture(scope="session")
def keys(work: Path) -> hers.Keys:
    return hers.Keys.generate(work / "keys")


class Server:
    """A `hers serve` child process on an ephemeral loopback port, stopped by its pid."""

    def __init__(self, cwd: Path, *args: str):
        self.proc = subprocess.Popen(
            [hers_bin(), "serve", "--listen", "127.0.0.1:0", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"hers serve did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split("listening on ", 1)[1].strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
