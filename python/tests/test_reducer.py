"""A trained reduction loaded from Python projects exactly as `hers project`."""

from __future__ import annotations

import numpy as np
import pytest

import hers

from conftest import DATA, read_set


def test_projection_equals_hers_project(projected):
    model, _, ids, x16 = projected
    r = hers.Reducer.load(model)
    assert r.input_dim == 384 and 16 in r.output_dims and r.method == "pca"
    _, _, x = read_set(DATA / "bible-minilm-test.parquet")
    y = r.project(x, 16)
    assert y.shape == x16.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x16, rtol=0, atol=1e-6)
    np.testing.assert_allclose(r.project(x[:5].astype(np.float64), 16), x16[:5], rtol=0, atol=1e-6)


def test_projection_refuses_bad_rows(projected):
    model, _, _, _ = projected
    r = hers.Reducer.load(model)
    with pytest.raises(hers.InputError, match="dimension 383"):
        r.project(np.zeros((2, 383), np.float32))
    rows = np.ones((3, 384), np.float32)
    rows[1, 5] = np.inf
    with pytest.raises(hers.InputError, match="row 1 holds a NaN or an infinity"):
        r.project(rows)
