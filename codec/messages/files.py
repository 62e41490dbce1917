"""File transfer between friends: offers, proofs of ownership, uploads and
downloads on their own streams, resumable at any byte offset."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from .accounts import Username
from .base import Event, Message, Reply, Request, StreamRequest

__all__ = [
    "CancelFile",
    "FileCancelled",
    "FileData",
    "FileDelivered",
    "FileInfo",
    "FileList",
    "FileOffer",
    "FileOffered",
    "FileStored",
    "ListFiles",
    "OfferFile",
    "ProofRange",
    "ProveFile",
    "DownloadFile",
    "TransferProgress",
    "UploadFile",
]

_HEX = "^[0-9a-f]+$"
FileId = Annotated[str, msgspec.Meta(min_length=32, max_length=32, pattern=_HEX)]
Sha256 = Annotated[str, msgspec.Meta(min_length=64, max_length=64, pattern=_HEX)]
Offset = Annotated[int, msgspec.Meta(ge=0, le=2**62)]

FileState = Literal["uploading", "ready", "cancelled"]


class FileInfo(msgspec.Struct, kw_only=True):
    """A file sent from ``sender`` to ``recipient``.

    ``state``: ``uploading`` until the server holds every byte (``received`` of
    ``size``), then ``ready`` (the recipient may download it), or ``cancelled``.
    ``downloaded`` is true once the recipient has fetched it completely.
    Times are Unix milliseconds.
    """

    file_id: str
    sender: str
    recipient: str
    name: str
    size: int
    sha256: str
    state: FileState
    received: int
    downloaded: bool = False
    created_ms: int = 0


class ProofRange(msgspec.Struct, array_like=True):
    """A byte range of the file: ``offset`` and ``length`` in bytes."""

    offset: int
    length: int


class OfferFile(Request):
    """Start sending a file to the friend ``to`` (online or not), or pick up an
    unfinished upload of the same content to the same friend.

    ``name`` is sanitised by the server (no directories, no control characters).
    The reply says which bytes the server already holds and carries a
    proof-of-ownership challenge: if the server has the content already, a
    correct ``ProveFile`` completes the transfer without sending it.
    """

    to: Username
    name: Annotated[str, msgspec.Meta(max_length=1024)]
    size: Offset
    sha256: Sha256


class FileOffer(Reply):
    """The transfer ``file_id`` exists. Upload from ``offset``; the bytes before it
    hash (SHA-256) to ``prefix_sha256``, which the client checks against its own
    file before building on them (a mismatch: upload from 0 with ``restart``).

    ``nonce`` and ``ranges`` are the challenge: the proof is the SHA-256 of the
    nonce followed by the bytes of each range in order. ``state`` is ``ready``
    when nothing is left to send (a repeated offer of a finished upload)."""

    file_id: str
    offset: int
    prefix_sha256: str
    nonce: bytes
    ranges: list[ProofRange]
    state: FileState = "uploading"


class ProveFile(Request):
    """Answer the challenge of ``FileOffer``. A correct proof when the server holds
    the content completes the transfer at once (``FileStored`` with
    ``instant``); otherwise the answer is ``FileStored`` with ``instant`` false and
    the client uploads as usual. Either way the answer reveals nothing else."""

    file_id: FileId
    proof: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class FileStored(Reply):
    """Where the upload of ``file_id`` stands: the server holds ``received``
    bytes; ``state`` ``ready`` means complete and verified. ``instant`` is true
    when it completed through a proof of ownership, without content bytes."""

    file_id: str
    received: int
    state: FileState
    instant: bool = False


class UploadFile(StreamRequest):
    """Upload bytes of ``file_id`` from ``offset`` (which must equal the server's
    offset, as tus does; otherwise ``CONFLICT``) to the end of the file, as raw
    bytes after this frame. While the bytes arrive the server sends
    ``TransferProgress`` frames with what it has written; the sender keeps at
    most a window (1 MiB) of bytes beyond the last one. The last frame is
    ``FileStored`` (or an ``Error``)."""

    file_id: FileId
    offset: Offset


class DownloadFile(StreamRequest):
    """Download ``file_id`` from ``offset``. The server answers on the stream with
    ``FileData``, then the raw bytes from ``offset`` to the end, then ends the
    stream. The downloader sends ``TransferProgress`` frames with what it has
    written; the server keeps at most a window (1 MiB) beyond the last one."""

    file_id: FileId
    offset: Offset


class FileData(Reply):
    """Header of a download: ``size`` - ``offset`` bytes follow."""

    file: FileInfo
    offset: int


class TransferProgress(Message):
    """On a transfer stream, from the receiving side: ``written`` bytes of the
    file (counted from its start) are safely on disk."""

    written: int


class CancelFile(Request):
    """Cancel ``file_id`` (either side): the upload stops, nothing more is
    downloadable and the other side is told."""

    file_id: FileId


class ListFiles(Request):
    """Files we sent or received that the server still holds."""


class FileList(Reply):
    """Answer to ``ListFiles``, newest first."""

    files: list[FileInfo]


class FileOffered(Event):
    """A friend's file is ready for us to download."""

    file: FileInfo


class FileCancelled(Event):
    """``file_id`` was cancelled by ``by``."""

    file_id: str
    by: str


class FileDelivered(Event):
    """Our file ``file_id`` was downloaded completely by its recipient."""

    file_id: str
