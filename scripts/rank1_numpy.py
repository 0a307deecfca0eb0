#!/usr/bin/env python3
"""Independent rank-1 of an embedding set with numpy, on a given probe split.

usage: rank1_numpy.py SET.parquet SPLIT.json   (SPLIT from `hers eval --split-out`)
Prints the rank-1 accuracy: cosine similarity, gallery = every row that is not a probe,
a tie between a mate and a non-mate counts as a miss.
"""
import json
import sys

import numpy as np
import pyarrow.parquet as pq

t = pq.read_table(sys.argv[1])
ids = [str(v) for v in t.column("id").to_pylist()]
labels = np.asarray(t.column("label").to_pylist())
emb = t.column("embedding").combine_chunks()
x = np.asarray(emb.flatten().to_numpy(zero_copy_only=False), dtype=np.float64).reshape(t.num_rows, -1)
x /= np.linalg.norm(x, axis=1, keepdims=True)
probe_ids = set(json.load(open(sys.argv[2]))["probe_ids"])
is_probe = np.array([i in probe_ids for i in ids])
p, g = x[is_probe], x[~is_probe]
# Correct at rank 1 when the best mate scores strictly above every non-mate (ties count
# against the probe, as in hers).
scores = p @ g.T
mate = labels[~is_probe][None, :] == labels[is_probe][:, None]
best_mate = np.where(mate, scores, -np.inf).max(axis=1)
best_other = np.where(mate, -np.inf, scores).max(axis=1)
print(float(np.mean(best_mate > best_other)))
