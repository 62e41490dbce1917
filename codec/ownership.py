"""The proof of ownership of a file's content, as both ends compute it.

The server picks a nonce and byte ranges; the proof is the SHA-256 of the nonce
followed by the bytes of each range, in order. Pure: callers read the ranges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["ownership_proof"]


def ownership_proof(nonce: bytes, pieces: Iterable[bytes]) -> bytes:
    """The 32-byte proof over ``nonce`` and the ranges' bytes ``pieces``."""
    digest = hashlib.sha256(nonce)
    for piece in pieces:
        digest.update(piece)
    return digest.digest()
