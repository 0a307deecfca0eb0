"""Every bad input raises its exception with the CLI's message, and stores nothing."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

import hers


@pytest.fixture()
def small(projected, keys, tmp_path):
    _, _, ids, x = projected
    g = hers.Gallery.create(tmp_path / "g", keys, dim=16)
    g.enrol(ids[:100], x[:100])
    return g, ids, x


def unchanged(g, n=100):
    assert len(g) == n
    assert g.check()["sound"]


def test_wrong_dimension(small):
    g, ids, x = small
    with pytest.raises(hers.InputError, match="dimension mismatch: expected 16, got 15"):
        g.enrol(ids[100:110], x[100:110, :15])
    with pytest.raises(hers.InputError, match="dimension mismatch: expected 16, got 15"):
        g.search(x[:2, :15])
    unchanged(g)


def test_nan_row(small):
    g, ids, x = small
    rows = x[100:110].copy()
    rows[3, 2] = np.nan
    with pytest.raises(hers.InputError, match=r"non-finite value in vector 3 \(component 2\)"):
        g.enrol(ids[100:110], rows)
    with pytest.raises(ValueError):  # InputError is a ValueError too
        g.search(rows)
    unchanged(g)


def test_empty_and_mismatched_inputs(small):
    g, ids, x = small
    with pytest.raises(hers.InputError, match="no rows to enrol"):
        g.enrol([], np.zeros((0, 16), np.float32))
    with pytest.raises(hers.InputError, match="3 ids for 2 rows"):
        g.enrol(["a", "b", "c"], x[:2])
    with pytest.raises(hers.InputError, match="2-D array of numbers"):
        g.enrol(["a"], "not an array")
    with pytest.raises(hers.InputError, match="ids are strings or integers"):
        g.enrol([1.5], x[:1])
    unchanged(g)


def test_duplicate_ids(small):
    g, ids, x = small
    with pytest.raises(hers.DuplicateIdError, match="id 7 appears again"):
        g.enrol(["7", "8", 7], x[100:103])
    with pytest.raises(hers.DuplicateIdError, match=f"id {ids[0]} is already in the gallery"):
        g.enrol([ids[0], "new"], x[100:102])
    unchanged(g)


def test_wrong_key(small, tmp_path):
    g, _, _ = small
    other = hers.Keys.generate(tmp_path / "other")
    with pytest.raises(hers.KeyMismatchError, match="key mismatch"):
        hers.Gallery.open(g.directory, other)


def test_missing_files(tmp_path, keys):
    with pytest.raises(hers.MissingFileError, match="no-such-keys"):
        hers.Keys.load(tmp_path / "no-such-keys")
    with pytest.raises(FileNotFoundError, match="holds no gallery"):
        hers.Gallery.open(tmp_path / "no-such-gallery", keys)
    with pytest.raises(hers.MissingFileError):
        hers.Reducer.load(tmp_path / "no-such-model")


def test_a_secret_key_others_may_read_is_refused(tmp_path):
    k = hers.Keys.generate(tmp_path / "k")
    os.chmod(tmp_path / "k" / "secret.key", 0o644)
    with pytest.raises(hers.HersError, match="secret.key"):
        hers.Keys.load(tmp_path / "k")
    with pytest.raises(hers.InputError, match="already holds a key set"):
        hers.Keys.generate(tmp_path / "k")
    assert k.key_id


def test_an_unreachable_server(keys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(hers.UnreachableError, match="cannot reach the server") as e:
        hers.Client(f"http://127.0.0.1:{port}", keys, timeout=5)
    assert isinstance(e.value, ConnectionError)
