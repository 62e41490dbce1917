"""Files of many GiB: 64-bit offsets, and the whole content verified at both
ends. Sparse files keep the disk cost down: the content is mostly zeros with a
few marked regions, so every byte still has to be in the right place.

Moving GiB through Python QUIC on a 2-core CI machine takes minutes, so the bulk
path is measured by ``bench/files.py`` (1 GiB); here a 4 GiB file resumes past
2**32 on both sides and the last 8 MiB really travel. What costs the time is
hashing: the test, the server (the prefix it holds), the uploading client (the
whole file, then the prefix) and the downloading client (its partial) each read
4 GiB, so the test gets a hang guard of its own rather than the suite's.
"""

import asyncio
import os

import pytest

from client.transfers import Transfers
from codec.messages import FileOffer, FileOffered, OfferFile
from tests.conftest import befriend, next_of, sha256_of

GiB = 1024**3
MiB = 1024**2


def sparse_file(path, size, marks):
    """A sparse file of ``size`` bytes with 4 KiB of random data at each mark."""
    with open(path, "wb") as fh:
        fh.truncate(size)
        for offset in marks:
            fh.seek(offset)
            fh.write(os.urandom(4096))


@pytest.mark.timeout(360)
async def test_resume_beyond_four_gib(server, member, tmp_path):
    """An upload and a download each resume at an offset past 2**32."""
    a = await member("peta")
    b = await member("exa")
    await befriend(a, b)
    size = 2**32 + 12 * MiB + 777
    held = size - 8 * MiB - 5
    source = tmp_path / "archive.bin"
    sparse_file(source, size, [5, 2**32 - 100, held - 10, held + 4096, size - 4096])
    digest = await asyncio.to_thread(sha256_of, source)
    offer = await a.session.call(
        OfferFile, FileOffer, to="exa", name="archive.bin", size=size, sha256=digest
    )
    # The server holds the first `held` bytes from an earlier, interrupted session.
    partial = server.files.blobs.partial_path(offer.file_id)
    with open(source, "rb") as src, open(partial, "wb") as dst:
        dst.truncate(held)
        for mark in (5, 2**32 - 100, held - 10):
            src.seek(mark)
            dst.seek(mark)
            dst.write(src.read(min(4096, held - mark)))
    sent = await Transfers(a.session, a.store, tmp_path / "a").send("exa", source)
    assert sent.state == "done"
    assert sent.wire_bytes == size - held
    offered = await next_of(b.session, FileOffered)
    target = tmp_path / "b" / "archive.bin"
    target.parent.mkdir()
    part = tmp_path / "b" / "archive.bin.part"
    with open(source, "rb") as src, open(part, "wb") as dst:
        dst.truncate(held)
        for mark in (5, 2**32 - 100, held - 10):
            src.seek(mark)
            dst.seek(mark)
            dst.write(src.read(min(4096, held - mark)))
    got = await Transfers(b.session, b.store, tmp_path / "b").download(
        offered.file.file_id, target
    )
    assert got.state == "done"
    assert got.wire_bytes == size - held
    # The download checked the whole content against the offered digest (a
    # mismatch fails it), so another pass over 4 GiB here would add nothing but
    # time; the marks and the size say the bytes landed where they belong.
    assert offered.file.sha256 == digest
    assert target.stat().st_size == size
    with open(source, "rb") as src, open(target, "rb") as dst:
        for mark in (5, 2**32 - 100, held - 10, held + 4096, size - 4096):
            src.seek(mark)
            dst.seek(mark)
            assert dst.read(4096) == src.read(4096)
