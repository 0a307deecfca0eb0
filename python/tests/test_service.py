"""The service client from Python against `hers serve` on loopback: the same answers as
`hers client search`, writes, verification, and the server's refusals as exceptions."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

import hers

from conftest import Server, run, write_set

N = 2000
P = 70  # more probes than one query holds by default (64): the client splits them


@pytest.fixture(scope="module")
def served(projected, keys, work):
    _, _, ids, x = projected
    g = hers.Gallery.create(work / "served", keys, dim=16)
    g.enrol(ids[:N], x[:N])
    token = work / "token"
    token.write_text("s3cret")
    os.chmod(token, 0o600)
    server = Server(work, "--gallery", "served", "--token-file", "token")
    try:
        yield server, g
    finally:
        server.stop()


def test_search_answers_as_hers_client_search(served, projected, keys, work):
    server, g = served
    _, _, ids, x = projected
    probe_ids = ids[N : N + P]
    write_set(work / "served-probes.parquet", probe_ids, x[N : N + P])
    run(
        "client", "--server", server.url, "search", "--keys", str(keys.directory),
        "--probes", "served-probes.parquet", "--top-k", "5", "--out", "served-cli.parquet", cwd=work,
    )
    client = hers.Client(server.url, keys)
    r = client.search(x[N : N + P], k=5, probe_ids=probe_ids)
    assert r.to_arrow().equals(pq.read_table(work / "served-cli.parquet"))
    # The in-process search of the same directory agrees.
    assert g.search(x[N : N + P], k=5, probe_ids=probe_ids).to_arrow().equals(r.to_arrow())
    assert r.timings["bytes_up"] > 0 and r.timings["bytes_down"] > 0
    assert client.config()["templates"] == N


def test_writes_and_verification(served, projected, keys):
    server, _ = served
    _, _, ids, x = projected
    reader = hers.Client(server.url, keys)
    with pytest.raises(hers.ServerError) as refused:
        reader.enrol(ids[N : N + 5], x[N : N + 5])
    assert refused.value.status == 401
    writer = hers.Client(server.url, keys, token="s3cret")
    done = writer.enrol(ids[N : N + 5], x[N : N + 5])
    assert done["enrolled"] == 5 and done["templates"] == N + 5
    assert writer.search(x[N : N + 1], k=1).ids == [[ids[N]]]
    v = writer.verify(x[N], ids[N], 0.9)
    assert v["accept"] and v["similarity"] > 0.99
    assert not writer.verify(x[N], ids[N + 1], 0.9)["accept"]
    assert writer.remove(ids[N : N + 5])["removed"] == 5
    assert writer.search(x[N : N + 1], k=1).ids != [[ids[N]]]
    with pytest.raises(hers.DuplicateIdError, match="409"):
        writer.enrol(ids[:1], x[:1])


def test_keys_that_are_not_the_servers_are_refused(served, tmp_path):
    server, _ = served
    other = hers.Keys.generate(tmp_path / "other")
    with pytest.raises(hers.KeyMismatchError, match="use the key set it was enrolled with"):
        hers.Client(server.url, other)
