"""The client's side of an upload stream the server cuts short: the server
answers and asks the client to stop sending (STOP_SENDING) while the client
still has file bytes on their way from the disk."""

import asyncio

from client.transfers.streams import UploadListener
from codec import ErrorCode, encode_message
from codec.messages import FileList, FileOffer, ListFiles, OfferFile, UploadFile
from tests.conftest import befriend


async def test_bytes_for_a_stream_the_server_stopped_are_dropped(member):
    a = await member("yuri")
    b = await member("zoe")
    await befriend(a, b)
    offer = await a.session.call(
        OfferFile, FileOffer, to="zoe", name="a.bin", size=100, sha256="ab" * 32
    )
    proto = await a.session.wait_ready(1)
    listener = UploadListener()
    wrong_offset = UploadFile(rid=proto.next_rid(), file_id=offer.file_id, offset=40)
    stream_id = proto.open_stream(listener, encode_message(wrong_offset))
    reply = await asyncio.wait_for(listener.final, 5)
    assert reply.code == ErrorCode.CONFLICT

    # The refusal came with a STOP_SENDING, which reset our side of the
    # stream: what the upload loop had read meanwhile must not raise
    # (aioquic's RuntimeError or, once the stream is gone, ValueError).
    proto.send_stream(stream_id, b"x" * 1000)
    await asyncio.sleep(0.1)
    proto.send_stream(stream_id, b"x" * 1000, end=True)
    proto.close_stream(stream_id)

    listing = await a.session.call(ListFiles, FileList)
    assert [f.file_id for f in listing.files] == [offer.file_id]
