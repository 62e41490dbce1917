"""File transfer between friends: offers, proofs of ownership, cancellation,
listing and retention. The byte streams themselves are in :mod:`file_streams`.

The server keeps one copy of each distinct content (a blob named by its
SHA-256). A sender who already holds content the server has can finish an
upload at once by proving ownership: the server picks random byte ranges and a
nonce, and only someone with the bytes can hash them. The challenge is issued
for every offer, whether or not the server has the content, so an answer
reveals nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import unicodedata
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import peewee

from codec.errors import ErrorCode
from codec.messages import (
    CancelFile,
    DownloadFile,
    FileCancelled,
    FileInfo,
    FileList,
    FileOffer,
    FileOffered,
    FileStored,
    ListFiles,
    OfferFile,
    Ok,
    ProofRange,
    ProveFile,
    UploadFile,
)
from codec.ownership import ownership_proof

from .blobs import EMPTY_SHA256, BlobStore, hash_file_prefix, read_ranges
from .errors import ServiceError
from .storage.models import FileTransfer, User
from .storage.prepared import Prepared

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .context import ServerContext
    from .file_streams import TransferStream
    from .router import Router
    from .social import SocialService
    from .streams import StreamHandler

__all__ = ["FileService", "sanitize_name"]

log = logging.getLogger("quicmeet.files")

PROOF_RANGES = 4
PROOF_RANGE_BYTES = 1024
CHALLENGE_TTL = 300.0
PURGE_INTERVAL = 3600.0
MAX_NAME_BYTES = 255


def sanitize_name(name: str) -> str:
    """A file name safe to show and to save: no directories, no control or
    invisible characters, no leading dots, at most 255 bytes of UTF-8."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        ch
        for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
    )
    name = name.strip().lstrip(".").strip()
    if not name:
        return "file"
    encoded = name.encode("utf-8")
    if len(encoded) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = dot + ext if dot and len(ext.encode()) < 20 else ""
    budget = MAX_NAME_BYTES - len(ext.encode())
    return name.encode()[:budget].decode("utf-8", "ignore") + ext


def _waiting_for(recipient: int) -> peewee.Query:
    Sender = User.alias()
    return (
        FileTransfer.select(FileTransfer, Sender.username.alias("sender_name"))
        .join(Sender, on=(FileTransfer.sender == Sender.id))
        .where(
            (FileTransfer.recipient == recipient)
            & (FileTransfer.state == "ready")
            & ~FileTransfer.downloaded
        )
        .order_by(FileTransfer.finished_ms)
        .limit(500)
        .objects()
    )


_WAITING_FOR = Prepared(_waiting_for, int)
"""The files uploaded for a user and not yet downloaded, oldest first (the
first 500, as many as ``list_files`` gives): offered again at every login.
Each row carries its sender's name as ``sender_name`` (``row.sender`` would
read the sender with one more SELECT per file)."""


def offers_waiting(recipient: int, recipient_name: str) -> list[FileInfo]:
    """What :data:`_WAITING_FOR` finds, as offers (database thread)."""
    return [
        file_info(row, row.sender_name, recipient_name)
        for row in _WAITING_FOR(recipient)
    ]


def file_info(row: FileTransfer, sender: str, recipient: str) -> FileInfo:
    return FileInfo(
        file_id=row.id,
        sender=sender,
        recipient=recipient,
        name=row.name,
        size=row.size,
        sha256=row.sha256,
        state=row.state,
        received=row.received if row.state == "uploading" else row.size,
        downloaded=row.downloaded,
        created_ms=row.created_ms,
    )


class FileService:
    """Handles file requests and owns the blob store."""

    def __init__(self, ctx: ServerContext, social: SocialService) -> None:
        self.ctx = ctx
        self.social = social
        self.in_meeting: Callable[[int], bool] = lambda user_id: False
        """Whether a user is in a room on this node (set by the app): a
        download on a transfer connection then gives way to the meeting."""
        self.blobs = BlobStore(ctx.config.files_dir)
        self.io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="files")
        self.hashers: dict[str, tuple[int, Any]] = {}
        """file id -> (bytes hashed, SHA-256 state) of partial uploads."""
        self._challenges: dict[str, tuple[bytes, list[tuple[int, int]], float]] = {}
        self.active: dict[str, set[TransferStream]] = {}
        self.streams_per_user: Counter[int] = Counter()
        self._purger: asyncio.Task[None] | None = None

    def register_handlers(self, router: Router) -> None:
        router.handle(OfferFile, self.offer)
        router.handle(ProveFile, self.prove)
        router.handle(CancelFile, self.cancel)
        router.handle(ListFiles, self.list_files)
        router.handle_stream(UploadFile, self.open_upload, transfer=True)
        router.handle_stream(DownloadFile, self.open_download, transfer=True)
        self.ctx.sessions.on_session(self.session_started, None)

    def start(self) -> None:
        self._purger = asyncio.get_running_loop().create_task(self._purge_loop())

    def meeting_changed(self, user_id: int) -> None:
        """The user joined or left a room here: their downloads give way to
        the meeting, or take the path back, now (each also looks at every
        chunk it sends)."""
        from .file_streams import DownloadStream

        for streams in self.active.values():
            for stream in streams:
                if isinstance(stream, DownloadStream) and stream.user_id == user_id:
                    stream.give_way()

    def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
        for streams in list(self.active.values()):
            for stream in list(streams):
                stream.abort()
        self.io.shutdown(wait=True)

    async def run_io(self, fn: Any, *args: Any) -> Any:
        """Run blocking file work on the file I/O threads."""
        return await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)

    # -- helpers --------------------------------------------------------------

    def friend_id(self, conn: ClientConnection, username: str) -> int:
        account = conn.account
        assert account is not None
        return self.social.friend_id(account.user_id, username, "files go to friends")

    async def transfer(self, file_id: str) -> tuple[FileTransfer, str, str]:
        """The transfer with its sender's and recipient's names."""

        def load() -> tuple[FileTransfer, str, str] | None:
            row = FileTransfer.get_or_none(FileTransfer.id == file_id)
            if row is None:
                return None
            names = {
                u.id: u.username
                for u in User.select(User.id, User.username).where(
                    User.id.in_([row.sender_id, row.recipient_id])
                )
            }
            return row, names[row.sender_id], names[row.recipient_id]

        found = await self.ctx.storage.run(load)
        if found is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "no such file")
        return found

    async def prefix_hash(self, file_id: str, length: int) -> Any:
        """SHA-256 state over the first ``length`` bytes of a partial upload."""
        cached = self.hashers.get(file_id)
        if cached is not None and cached[0] == length:
            return cached[1]
        digest = await self.run_io(
            hash_file_prefix, self.blobs.partial_path(file_id), length
        )
        self.hashers[file_id] = (length, digest)
        return digest

    async def complete(
        self, row: FileTransfer, sender: str, recipient: str
    ) -> FileInfo:
        """Mark a transfer ready and tell its recipient."""
        finished = self.ctx.clock.wall_ms()

        def store() -> None:
            FileTransfer.update(
                state="ready", received=row.size, finished_ms=finished
            ).where(FileTransfer.id == row.id).execute()

        await self.ctx.storage.run(store)
        row.state, row.received, row.finished_ms = "ready", row.size, finished
        self.hashers.pop(row.id, None)
        info = file_info(row, sender, recipient)
        self.social.push(row.recipient_id, FileOffered(file=info))
        return info

    async def session_started(self, conn: ClientConnection) -> None:
        """Offer again what waits for the user (the oldest 500, as many as
        ``list_files`` gives): an offer is pushed once, when the upload
        completes, and is lost with a recipient's connection that was dead or
        being replaced at that moment (a network drop)."""
        account = conn.account
        assert account is not None
        offers = await self.ctx.storage.run(
            offers_waiting, account.user_id, account.username
        )
        if conn.account is not account:
            return
        for info in offers:
            conn.push(FileOffered(file=info))

    # -- requests -------------------------------------------------------------

    async def offer(self, conn: ClientConnection, req: OfferFile) -> FileOffer:
        account = conn.account
        assert account is not None
        recipient = self.friend_id(conn, req.to)
        config = self.ctx.config
        if req.size > config.max_file_size:
            raise ServiceError(
                ErrorCode.TOO_LARGE,
                f"files may be at most {config.max_file_size} bytes",
            )
        name = sanitize_name(req.name)
        me = account.user_id

        def find_or_create() -> FileTransfer | None:
            with FileTransfer._meta.database.atomic():
                existing = (
                    FileTransfer.select()
                    .where(
                        (FileTransfer.sender == me)
                        & (FileTransfer.recipient == recipient)
                        & (FileTransfer.sha256 == req.sha256)
                        & (FileTransfer.size == req.size)
                        & (FileTransfer.state == "uploading")
                    )
                    .first()
                )
                if existing is not None:
                    return existing  # type: ignore[no-any-return]
                used = (
                    FileTransfer.select(
                        peewee.fn.COALESCE(peewee.fn.SUM(FileTransfer.size), 0)
                    )
                    .where(
                        (FileTransfer.sender == me)
                        & (FileTransfer.state != "cancelled")
                    )
                    .scalar()
                )
                if used + req.size > config.quota_bytes:
                    return None
                return FileTransfer.create(  # type: ignore[no-any-return]
                    id=secrets.token_hex(16),
                    sender=me,
                    recipient=recipient,
                    name=name,
                    size=req.size,
                    sha256=req.sha256,
                    created_ms=self.ctx.clock.wall_ms(),
                )

        row = await self.ctx.storage.run(find_or_create)
        if row is None:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"this file would exceed your quota of {config.quota_bytes} bytes",
            )
        offset = await self.run_io(self.blobs.partial_size, row.id)
        if offset > row.size:
            await self.run_io(self.blobs.truncate_partial, row.id, 0)
            offset = 0
        digest = await self.prefix_hash(row.id, offset)
        nonce = secrets.token_bytes(16)
        ranges = self._pick_ranges(row.size)
        self._expire_challenges()
        self._challenges[row.id] = (
            nonce,
            ranges,
            self.ctx.clock.monotonic() + CHALLENGE_TTL,
        )
        return FileOffer(
            rid=req.rid,
            file_id=row.id,
            offset=offset,
            prefix_sha256=digest.hexdigest(),
            nonce=nonce,
            ranges=[ProofRange(o, n) for o, n in ranges],
        )

    @staticmethod
    def _pick_ranges(size: int) -> list[tuple[int, int]]:
        if size == 0:
            return []
        length = min(size, PROOF_RANGE_BYTES)
        rng = secrets.SystemRandom()
        return [(rng.randint(0, size - length), length) for _ in range(PROOF_RANGES)]

    def _expire_challenges(self) -> None:
        now = self.ctx.clock.monotonic()
        for file_id in [k for k, v in self._challenges.items() if v[2] < now]:
            del self._challenges[file_id]

    async def prove(self, conn: ClientConnection, req: ProveFile) -> FileStored:
        account = conn.account
        assert account is not None
        row, sender, recipient = await self.transfer(req.file_id)
        if row.sender_id != account.user_id:
            raise ServiceError(ErrorCode.NOT_FOUND, "no such file")
        if row.state != "uploading":
            return FileStored(
                rid=req.rid, file_id=row.id, received=row.received, state=row.state
            )
        challenge = self._challenges.pop(row.id, None)
        if challenge is not None and self.blobs.has_blob(row.sha256):
            nonce, ranges, _ = challenge
            pieces = (
                []
                if row.sha256 == EMPTY_SHA256
                else await self.run_io(
                    read_ranges, self.blobs.blob_path(row.sha256), ranges
                )
            )
            expected = ownership_proof(nonce, pieces)
            if hmac.compare_digest(expected, req.proof):
                await self.run_io(self.blobs.delete_partial, row.id)
                await self.complete(row, sender, recipient)
                self.ctx.stats["instant_uploads"] += 1
                return FileStored(
                    rid=req.rid,
                    file_id=row.id,
                    received=row.size,
                    state="ready",
                    instant=True,
                )
        received = await self.run_io(self.blobs.partial_size, row.id)
        return FileStored(
            rid=req.rid, file_id=row.id, received=received, state="uploading"
        )

    async def cancel(self, conn: ClientConnection, req: CancelFile) -> Ok:
        account = conn.account
        assert account is not None
        row, sender, recipient = await self.transfer(req.file_id)
        if account.user_id not in (row.sender_id, row.recipient_id):
            raise ServiceError(ErrorCode.NOT_FOUND, "no such file")
        if row.state != "cancelled":
            await self.ctx.storage.run(
                lambda: (
                    FileTransfer.update(
                        state="cancelled", finished_ms=self.ctx.clock.wall_ms()
                    )
                    .where(FileTransfer.id == row.id)
                    .execute()
                )
            )
            for stream in list(self.active.get(row.id, ())):
                stream.cancelled()
            self.hashers.pop(row.id, None)
            await self.run_io(self.blobs.delete_partial, row.id)
            other = (
                row.recipient_id if account.user_id == row.sender_id else row.sender_id
            )
            self.social.push(other, FileCancelled(file_id=row.id, by=account.username))
        return Ok(rid=req.rid)

    async def list_files(self, conn: ClientConnection, req: ListFiles) -> FileList:
        account = conn.account
        assert account is not None
        me = account.user_id

        def load() -> list[FileInfo]:
            Sender = User.alias()
            Recipient = User.alias()
            query = (
                FileTransfer.select(
                    FileTransfer,
                    Sender.username.alias("sender_name"),
                    Recipient.username.alias("recipient_name"),
                )
                .join(Sender, on=(FileTransfer.sender == Sender.id))
                .switch(FileTransfer)
                .join(Recipient, on=(FileTransfer.recipient == Recipient.id))
                .where(
                    ((FileTransfer.sender == me) | (FileTransfer.recipient == me))
                    & (FileTransfer.state != "cancelled")
                )
                .order_by(FileTransfer.created_ms.desc())
                .limit(500)
            )
            # The names from the query's own columns: row.sender would read
            # each file's users with more SELECTs.
            return [
                file_info(row, row.sender_name, row.recipient_name)
                for row in query.objects()
            ]

        files = await self.ctx.storage.run(load)
        return FileList(rid=req.rid, files=files)

    # -- streams --------------------------------------------------------------

    def _check_capacity(self, conn: ClientConnection) -> int:
        account = conn.account
        assert account is not None
        if self.streams_per_user[account.user_id] >= self.ctx.config.max_transfers:
            raise ServiceError(
                ErrorCode.BUSY,
                f"at most {self.ctx.config.max_transfers} transfers at once",
                1000,
            )
        return account.user_id

    def open_upload(
        self, conn: ClientConnection, req: UploadFile, stream: StreamHandler
    ) -> TransferStream:
        from .file_streams import UploadStream

        user_id = self._check_capacity(conn)
        return UploadStream(self, conn, stream, req, user_id)

    def open_download(
        self, conn: ClientConnection, req: DownloadFile, stream: StreamHandler
    ) -> TransferStream:
        from .file_streams import DownloadStream

        user_id = self._check_capacity(conn)
        return DownloadStream(self, conn, stream, req, user_id)

    # -- retention ------------------------------------------------------------

    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception:
                log.exception("purging old files failed")
            await asyncio.sleep(PURGE_INTERVAL)

    async def purge(self) -> int:
        """Forget transfers past the retention and delete unreferenced blobs."""
        cutoff = self.ctx.clock.wall_ms() - int(
            self.ctx.config.retention_days * 86_400_000
        )

        def expired() -> tuple[list[str], list[str]]:
            done = (FileTransfer.state != "uploading") & (
                FileTransfer.finished_ms < cutoff
            )
            stale = (FileTransfer.state == "uploading") & (
                FileTransfer.created_ms < cutoff
            )
            old = list(
                FileTransfer.select(FileTransfer.id, FileTransfer.sha256).where(
                    done | stale
                )
            )
            ids = [row.id for row in old]
            for start in range(0, len(ids), 200):
                FileTransfer.delete().where(
                    FileTransfer.id.in_(ids[start : start + 200])
                ).execute()
            candidates = {row.sha256 for row in old}
            still = (
                {
                    row.sha256
                    for row in FileTransfer.select(FileTransfer.sha256).where(
                        FileTransfer.sha256.in_(list(candidates))
                    )
                }
                if candidates
                else set()
            )
            return ids, sorted(candidates - still)

        ids, orphaned = await self.ctx.storage.run(expired)
        active = set(self.active)
        for file_id in ids:
            if file_id not in active:
                await self.run_io(self.blobs.delete_partial, file_id)
        for sha256 in orphaned:
            await self.run_io(self.blobs.delete_blob, sha256)
        if ids:
            log.info("purged %d old transfers, %d blobs", len(ids), len(orphaned))
        return len(ids)
