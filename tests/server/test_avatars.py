"""Avatar pictures: sizes checked before decoding, memory bounded under load."""

import asyncio
import io

import pytest
from PIL import Image

from client import ServerError, Session
from codec import ErrorCode
from server.accounts import reencode_avatar
from server.errors import ServiceError
from tests.conftest import PASSWORD, start_server_process


def picture(fmt: str, size: tuple[int, int], mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 128)[: len(mode)]).save(out, format=fmt)
    return out.getvalue()


def test_a_png_too_large_to_decode_is_refused_from_its_header():
    with pytest.raises(ServiceError) as info:
        reencode_avatar(picture("PNG", (4096, 4096)))
    assert info.value.code == ErrorCode.TOO_LARGE
    assert "2048x2048" in info.value.message


def test_the_largest_accepted_pictures_shrink_to_128_pixels():
    for data in (
        picture("PNG", (2048, 2048)),
        picture("JPEG", (4096, 4096), "RGB"),
    ):
        with Image.open(io.BytesIO(reencode_avatar(data))) as image:
            assert image.format == "PNG" and image.size == (128, 128)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def test_concurrent_avatar_uploads_keep_the_server_memory_bounded(tmp_path):
    """Four uploads of a 75 KB PNG of 4096x4096 pixels once added over 600 MB
    to the server; with the largest accepted pictures alongside, the server's
    peak memory now grows by far less."""
    server = start_server_process(tmp_path)
    sessions = []
    try:
        for name in ("pia", "quinn", "rosa", "sam"):
            session = Session(server.address)
            await session.connect()
            await session.register(name, PASSWORD)
            await session.login(name, PASSWORD)
            sessions.append(session)
        before = peak_rss_mb(server.proc.pid)
        bomb = picture("PNG", (4096, 4096))
        largest = picture("PNG", (2048, 2048))
        uploads = [s.set_avatar(bomb) for s in sessions]
        uploads += [s.set_avatar(largest) for s in sessions for _ in range(2)]
        results = await asyncio.gather(*uploads, return_exceptions=True)
        refused = results[: len(sessions)]
        assert all(
            isinstance(r, ServerError) and r.code == ErrorCode.TOO_LARGE
            for r in refused
        ), refused
        assert not any(isinstance(r, Exception) for r in results[len(sessions) :])
        grown = peak_rss_mb(server.proc.pid) - before
        assert grown < 200, f"the server's peak memory grew by {grown:.0f} MiB"
    finally:
        for session in sessions:
            await session.close()
        server.stop()
