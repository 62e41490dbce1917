"""The file side of transfers: hashes, the server's ownership challenge,
where a download lands, and appending to it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, BinaryIO

from codec.ownership import ownership_proof

from .records import TransferError

__all__ = [
    "append",
    "file_sha256",
    "hash_step",
    "prefix_state",
    "ranges_proof",
    "unique_path",
]

HASH_CHUNK = 1024 * 1024


def hash_step(fh: BinaryIO, digest: Any, length: int) -> int:
    """Hash up to ``length`` more bytes of ``fh`` into ``digest``; how many
    (0 at the end of the file)."""
    done = 0
    while done < length:
        chunk = fh.read(min(HASH_CHUNK, length - done))
        if not chunk:
            break
        digest.update(chunk)
        done += len(chunk)
    return done


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while hash_step(fh, digest, HASH_CHUNK):
            pass
    return digest.hexdigest()


def prefix_state(path: Path, length: int) -> Any:
    """SHA-256 state over the first ``length`` bytes of ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if hash_step(fh, digest, length) < length:
            raise TransferError(f"{path} is shorter than {length} bytes")
    return digest


def ranges_proof(path: Path, nonce: bytes, ranges: list[tuple[int, int]]) -> bytes:
    """Answer the server's challenge from the file at ``path``."""
    pieces = []
    with open(path, "rb") as fh:
        for offset, length in ranges:
            fh.seek(offset)
            pieces.append(fh.read(length))
    return ownership_proof(nonce, pieces)


def unique_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name (1)``, ``name (2)``… if taken (with .part)."""
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, dot, ext = name, "", ""
    candidate = directory / name
    n = 1
    while candidate.exists() or Path(str(candidate) + ".part").exists():
        candidate = directory / f"{stem} ({n}){dot}{ext}"
        n += 1
    return candidate


def append(fd: int, data: bytes, digest: Any) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    digest.update(data)
