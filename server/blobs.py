"""Content-addressed file storage on disk, with resumable partial uploads.

Blocking file I/O only; callers run these methods in an executor. Layout under
``root``: ``blobs/ab/abcdef…`` (named by SHA-256, complete and verified) and
``partial/<file id>`` (an upload in progress). A blob appears only by renaming a
verified partial file into place, so a reader never sees half a file.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

__all__ = ["BlobStore", "DiskFull", "EMPTY_SHA256", "hash_file_prefix", "read_ranges"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
READ_CHUNK = 1024 * 1024


class DiskFull(OSError):
    """The disk (or the process's file size limit) has no room for more bytes."""


def _is_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def hash_file_prefix(path: Path, length: int) -> hashlib._Hash:
    """SHA-256 state over the first ``length`` bytes of ``path``."""
    digest = hashlib.sha256()
    if length == 0:
        return digest
    remaining = length
    with open(path, "rb") as fh:
        while remaining > 0:
            chunk = fh.read(min(READ_CHUNK, remaining))
            if not chunk:
                raise ValueError(f"{path} is shorter than {length} bytes")
            digest.update(chunk)
            remaining -= len(chunk)
    return digest


def read_ranges(path: Path, ranges: list[tuple[int, int]]) -> list[bytes]:
    """The bytes of each (offset, length) range of ``path``."""
    pieces = []
    with open(path, "rb") as fh:
        for offset, length in ranges:
            fh.seek(offset)
            data = fh.read(length)
            if len(data) != length:
                raise ValueError("range past the end of the file")
            pieces.append(data)
    return pieces


class BlobStore:
    """Blobs and partial uploads under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.partial_dir = root / "partial"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)

    def blob_path(self, sha256: str) -> Path:
        return self.blob_dir / sha256[:2] / sha256

    def partial_path(self, file_id: str) -> Path:
        return self.partial_dir / file_id

    def has_blob(self, sha256: str) -> bool:
        return sha256 == EMPTY_SHA256 or self.blob_path(sha256).exists()

    def partial_size(self, file_id: str) -> int:
        try:
            return self.partial_path(file_id).stat().st_size
        except FileNotFoundError:
            return 0

    def truncate_partial(self, file_id: str, length: int) -> None:
        """Cut a partial upload back to ``length`` bytes (0 removes it)."""
        path = self.partial_path(file_id)
        if length == 0:
            path.unlink(missing_ok=True)
            return
        with open(path, "r+b") as fh:
            fh.truncate(length)

    def open_partial(self, file_id: str) -> int:
        """A file descriptor to append to the partial upload."""
        return os.open(
            self.partial_path(file_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )

    @staticmethod
    def write_all(fd: int, data: bytes) -> None:
        """Append ``data``; raises :class:`DiskFull` when there is no room."""
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            if _is_full(exc):
                raise DiskFull(exc.errno, "no room left on the server's disk") from None
            raise

    def commit(self, file_id: str, sha256: str) -> None:
        """Move a verified partial upload into place as the blob ``sha256``."""
        partial = self.partial_path(file_id)
        if sha256 == EMPTY_SHA256:
            partial.unlink(missing_ok=True)
            return
        target = self.blob_path(sha256)
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            partial.unlink(missing_ok=True)
            return
        fd = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, target)

    def open_blob(self, sha256: str):  # type: ignore[no-untyped-def]
        """Open blob ``sha256`` for reading (the empty blob needs no file)."""
        if sha256 == EMPTY_SHA256:
            return open(os.devnull, "rb")
        return open(self.blob_path(sha256), "rb")

    def delete_blob(self, sha256: str) -> None:
        if sha256 != EMPTY_SHA256:
            self.blob_path(sha256).unlink(missing_ok=True)

    def delete_partial(self, file_id: str) -> None:
        self.partial_path(file_id).unlink(missing_ok=True)
