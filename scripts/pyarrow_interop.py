#!/usr/bin/env python3
"""Interop checks between hers and pyarrow, driven by the Rust tests.

  read PATH          print a JSON summary of an embedding set read with pyarrow
  write PATH         write a small set the way pandas/pyarrow users do: utf8 ids,
                     List<float32> embeddings, int32 labels and an extra column
"""
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def read(path):
    t = pq.read_table(path)
    emb = t.column("embedding").combine_chunks()
    x = np.asarray(emb.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
    n = t.num_rows
    d = x.size // n
    x = x.reshape(n, d)
    print(json.dumps({
        "rows": n,
        "dim": d,
        "embedding_type": str(t.schema.field("embedding").type),
        "id_type": str(t.schema.field("id").type),
        "max_norm_error": float(np.abs(np.linalg.norm(x, axis=1) - 1).max()),
        "first_id": t.column("id")[0].as_py(),
        "sum": float(x.sum()),
        "columns": t.column_names,
    }))


def write(path):
    rng = np.random.default_rng(3)
    n, d = 30, 8
    x = rng.standard_normal((n, d)).astype(np.float32)
    emb = pa.array([list(r) for r in x], type=pa.list_(pa.float32()))
    t = pa.table({
        "id": pa.array([f"img-{i:03d}" for i in range(n)], type=pa.string()),
        "label": pa.array([i // 3 for i in range(n)], type=pa.int32()),
        "embedding": emb,
        "source": pa.array([f"camera-{i % 2}" for i in range(n)]),
    })
    pq.write_table(t, path)
    print(json.dumps({"rows": n, "dim": d, "sum": float(x.astype(np.float64).sum())}))


if __name__ == "__main__":
    {"read": read, "write": write}[sys.argv[1]](sys.argv[2])
