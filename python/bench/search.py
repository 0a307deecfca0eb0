"""1M × 16-D encrypted search from Python against the same search run by the Rust binary.

Enrols --gallery-size random unit 16-D rows into a new gallery with `hers.Gallery.enrol`, then
times --queries single-probe searches through `Gallery.search` and through `hers search` (the
Rust binary, same gallery, same probe) and prints the medians of the per-step timings both
report (encrypt, score, decrypt+rank; the gallery's loading excluded from both).

    python python/bench/search.py --hers target/release/hers --work /tmp/hers-bench
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import hers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hers", required=True, help="the hers binary (a release build)")
    ap.add_argument("--work", type=Path, required=True, help="a directory for keys, gallery and probe")
    ap.add_argument("--gallery-size", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--queries", type=int, default=15)
    a = ap.parse_args()

    rng = np.random.default_rng(7)
    a.work.mkdir(parents=True, exist_ok=True)
    keys_dir, gallery_dir = a.work / "keys", a.work / "gallery"
    keys = hers.Keys.load(keys_dir) if (keys_dir / "secret.key").exists() else hers.Keys.generate(keys_dir)
    if (gallery_dir / "manifest.json").exists():
        g = hers.Gallery.open(gallery_dir, keys)
    else:
        g = hers.Gallery.create(gallery_dir, keys, dim=a.dim)
        x = rng.standard_normal((a.gallery_size, a.dim)).astype(np.float32)
        t = time.perf_counter()
        g.enrol(range(a.gallery_size), x)
        print(f"enrolled {a.gallery_size} in {time.perf_counter() - t:.1f} s")
    probe = rng.standard_normal((1, a.dim)).astype(np.float32)
    emb = pa.FixedSizeListArray.from_arrays(pa.array(probe.reshape(-1)), a.dim).cast(pa.list_(pa.float32()))
    pq.write_table(pa.table({"id": pa.array([0], pa.int64()), "label": pa.array([0], pa.int32()), "embedding": emb}), a.work / "probe.parquet")

    g.search(probe, k=10)  # loads the hot form (and writes its cache for the binary)
    py = [g.search(probe, k=10).timings for _ in range(a.queries)]
    rust = []
    pattern = re.compile(r"encrypt ([\d.]+) ms, score ([\d.]+) ms, decrypt\+top-k ([\d.]+) ms")
    for _ in range(a.queries):
        p = subprocess.run(
            [a.hers, "search", "--keys", str(keys_dir), "--gallery", str(gallery_dir), "--probes", str(a.work / "probe.parquet"), "--top-k", "10", "--out", str(a.work / "r.parquet")],
            capture_output=True, text=True, check=True,
        )
        m = pattern.search(p.stderr)
        rust.append({"encrypt": float(m[1]) / 1e3, "score": float(m[2]) / 1e3, "decrypt": float(m[3]) / 1e3})

    def med(rows, key):
        return statistics.median(r[key] for r in rows) * 1e3

    print(f"{len(g)} × {a.dim}-D, {a.queries} single-probe queries each, medians in ms")
    print(f"{'':8} {'encrypt':>8} {'score':>8} {'decrypt':>8} {'total':>8}")
    for name, rows in (("python", py), ("rust", rust)):
        tot = statistics.median(r["encrypt"] + r["score"] + r["decrypt"] for r in rows) * 1e3
        print(f"{name:8} {med(rows, 'encrypt'):8.2f} {med(rows, 'score'):8.2f} {med(rows, 'decrypt'):8.2f} {tot:8.2f}")
    ratio = statistics.median(r["encrypt"] + r["score"] + r["decrypt"] for r in py) / statistics.median(
        r["encrypt"] + r["score"] + r["decrypt"] for r in rust
    )
    print(f"python / rust: {ratio:.3f}")


if __name__ == "__main__":
    main()
