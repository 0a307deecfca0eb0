"""A gallery enrolled and searched from Python: exact integer scores, and the same answers as
the CLI on the same directory, both ways round."""

from __future__ import annotations

import signal

import numpy as np
import pyarrow.parquet as pq
import pytest

import hers

from conftest import run, write_set

N = 3000  # gallery rows of the projected test set
P = 40  # probes


def quantise(x: np.ndarray, s: int) -> np.ndarray:
    """The cosine quantiser: round(s·x/‖x‖) half away from zero, clamped to ±s."""
    x = x.astype(np.float64)
    v = s * x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -s, s).astype(np.int64)


@pytest.fixture(scope="module")
def gallery(projected, keys, work):
    _, _, ids, x = projected
    g = hers.Gallery.create(work / "py-gallery", keys, dim=16)
    report = g.enrol(ids[:N], x[:N])
    assert report == {"enrolled": N, "held": 0}
    assert len(g) == N
    return g


def test_decrypted_scores_are_numpys_integer_inner_products(gallery, projected):
    _, _, ids, x = projected
    probes = x[N : N + P]
    r = gallery.search(probes, k=5)
    assert r.scores.shape == (P, 5) and r.scores.dtype == np.int64
    q_gallery = quantise(x[:N], gallery.scale)
    q_probes = quantise(probes, gallery.scale)
    exact = q_probes @ q_gallery.T  # every score, in the clear
    row = {g: i for i, g in enumerate(ids[:N])}
    for i in range(P):
        got = [exact[i, row[g]] for g in r.ids[i]]
        assert list(r.scores[i]) == got
        # The top 5 are the 5 largest exact scores (ties broken either way).
        assert sorted(got, reverse=True) == sorted(exact[i])[::-1][:5]
    np.testing.assert_allclose(r.similarities, r.scores / gallery.scale**2)
    assert set(r.timings) >= {"encrypt", "score", "decrypt"}


def test_a_python_gallery_answers_as_hers_search(gallery, projected, keys, work):
    _, _, ids, x = projected
    probe_ids = ids[N : N + P]
    write_set(work / "probes.parquet", probe_ids, x[N : N + P])
    run(
        "search", "--keys", str(keys.directory), "--gallery", str(gallery.directory),
        "--probes", "probes.parquet", "--top-k", "5", "--out", "cli.parquet", cwd=work,
    )
    cli = pq.read_table(work / "cli.parquet")
    mine = gallery.search(x[N : N + P], k=5, probe_ids=probe_ids)
    assert mine.to_arrow().equals(cli)
    df = mine.to_pandas()
    assert list(df.columns) == ["probe_id", "rank", "gallery_id", "score", "similarity"]
    assert len(df) == P * 5


def test_a_cli_gallery_answers_in_python_as_on_the_cli(projected, keys, work):
    _, p16, ids, x = projected
    run("enroll", "--keys", str(keys.directory), "--input", str(p16), "--gallery", "cli-gallery", cwd=work)
    g = hers.Gallery.open(work / "cli-gallery", keys)
    assert len(g) == len(ids) and g.dim == 16
    write_set(work / "probes-all.parquet", ids[:P], x[:P])
    run(
        "search", "--keys", str(keys.directory), "--gallery", "cli-gallery",
        "--probes", "probes-all.parquet", "--top-k", "3", "--out", "cli3.parquet", cwd=work,
    )
    assert g.search(x[:P], k=3, probe_ids=ids[:P]).to_arrow().equals(pq.read_table(work / "cli3.parquet"))


def test_remove_resume_and_check(projected, keys, work):
    _, _, ids, x = projected
    g = hers.Gallery.create(work / "g-remove", keys, dim=16)
    rows = x[:5000].astype(np.float64)  # float64 is taken too
    g.enrol(ids[:5000], rows, chunks_per_segment=1)
    with pytest.raises(hers.InputError, match="enrolled already, nothing to do"):
        g.enrol(ids[:5000], rows)
    assert g.enrol(ids[:5000], rows, resume=True) == {"enrolled": 0, "held": 5000}
    assert g.remove(ids[:10]) == 10
    assert len(g) == 4990
    assert ids[0] not in g.search(x[:1], k=5).ids[0]
    report = g.check()
    assert report["sound"] and report["segments"] == 2 and report["problems"] == []
    # The CLI checks the same directory.
    run("gallery", "check", "g-remove", cwd=work)


def test_ctrl_c_stops_between_segments_keeping_what_was_committed(projected, keys, work):
    _, _, ids, x = projected
    g = hers.Gallery.create(work / "g-interrupted", keys, dim=16)
    rows_per_segment = keys.degree  # one chunk per segment

    def interrupt(done: int) -> None:
        signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        g.enrol(ids[:9000], x[:9000], chunks_per_segment=1, progress=interrupt)
    assert len(g) == rows_per_segment
    assert g.check()["sound"]
    assert g.enrol(ids[:9000], x[:9000], chunks_per_segment=1, resume=True) == {
        "enrolled": 9000 - rows_per_segment,
        "held": rows_per_segment,
    }
    assert len(g) == 9000
