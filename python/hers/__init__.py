"""hers: search biometric and image embeddings while they stay encrypted.

A gallery of embeddings is encrypted with BFV under keys only you hold; a server (or this
process) scores encrypted probes against it without seeing a template, a probe or a score,
and only the key holder decrypts and ranks.

    import numpy as np, hers
    keys = hers.Keys.generate("keys")
    gallery = hers.Gallery.create("gallery", keys, dim=16)
    gallery.enrol(ids, embeddings)            # n × 16 float32/float64
    result = gallery.search(probes, k=5)      # result.ids, result.scores, result.similarities

The same through a server (`hers serve --gallery gallery --public-keys keys`):

    client = hers.Client("http://127.0.0.1:7878", keys)
    result = client.search(probes, k=5)
"""

from ._hers import (
    Client,
    DuplicateIdError,
    Gallery,
    GalleryError,
    HersError,
    InputError,
    KeyMismatchError,
    Keys,
    MissingFileError,
    Reducer,
    ServerError,
    UnreachableError,
    __version__,
)
from .results import SearchResult

__all__ = [
    "Client",
    "DuplicateIdError",
    "Gallery",
    "GalleryError",
    "HersError",
    "InputError",
    "KeyMismatchError",
    "Keys",
    "MissingFileError",
    "Reducer",
    "SearchResult",
    "ServerError",
    "UnreachableError",
    "__version__",
]
