"""Search results as arrays, and as the table `hers search --out` writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

import numpy as np

COLUMNS = ("probe_id", "rank", "gallery_id", "score", "similarity")


@dataclass(frozen=True)
class SearchResult:
    """The k best matches of each of n probes, decrypted and ranked by the key holder.

    Row i is probe ``probe_ids[i]``; column j its (j+1)-th best match. ``scores`` are the
    decrypted integer scores (inner products of the quantised vectors, or squared distances
    for the Euclidean metric), ``similarities`` the same divided by s². A gallery smaller than
    k pads each row with id "", score 0 and similarity NaN.
    """

    probe_ids: List[str]
    ids: List[List[str]]
    scores: np.ndarray
    similarities: np.ndarray
    timings: Dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.probe_ids)

    def top(self, probe: int = 0) -> List[tuple]:
        """(gallery id, score, similarity) of one probe's matches, best first."""
        return [
            (g, int(s), float(m))
            for g, s, m in zip(self.ids[probe], self.scores[probe], self.similarities[probe])
            if g != ""
        ]

    def rows(self) -> Dict[str, List[Any]]:
        """The long table: one row per match (probe_id, rank, gallery_id, score, similarity)."""
        out: Dict[str, List[Any]] = {c: [] for c in COLUMNS}
        for i, probe in enumerate(self.probe_ids):
            for j, g in enumerate(self.ids[i]):
                if g == "":
                    continue
                out["probe_id"].append(probe)
                out["rank"].append(j + 1)
                out["gallery_id"].append(g)
                out["score"].append(int(self.scores[i, j]))
                out["similarity"].append(float(self.similarities[i, j]))
        return out

    def to_pandas(self):
        """The long table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(COLUMNS))

    def to_arrow(self):
        """The long table as a pyarrow Table, with the columns of `hers search --out` (needs pyarrow)."""
        import pyarrow as pa

        types = {"probe_id": pa.string(), "rank": pa.uint32(), "gallery_id": pa.string(), "score": pa.int64(), "similarity": pa.float64()}
        schema = pa.schema([pa.field(c, types[c], nullable=False) for c in COLUMNS])
        r = self.rows()
        return pa.table({c: pa.array(r[c], types[c]) for c in COLUMNS}, schema=schema)
