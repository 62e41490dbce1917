"""File transfers on the client: send to a friend, download, pause, resume,
cancel, with the state kept in the local store so that a restart (or a crash)
loses nothing.

Uploads hash the file first (reported as ``checking`` progress, and stopped
by a pause), then offer its SHA-256; the server's challenge is answered by
hashing a few ranges of the file, which completes the transfer at once when the
server already has the content. Otherwise the upload continues from the offset
the server holds, after checking that those bytes hash like the file's prefix.
Downloads go to ``NAME.part``, resume from its length, and are renamed into
place only after the whole file's SHA-256 matches.
"""

from .files import file_sha256, ranges_proof, unique_path
from .manager import Transfers
from .records import Progress, Transfer, TransferError

__all__ = [
    "Progress",
    "Transfer",
    "TransferError",
    "Transfers",
    "file_sha256",
    "ranges_proof",
    "unique_path",
]
