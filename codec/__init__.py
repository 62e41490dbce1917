"""quicmeet's pure code: wire formats and media algorithms. No sockets, no threads,
no clocks of its own (callers pass ``now``)."""

from .errors import (
    CloseCode,
    CodecError,
    ErrorCode,
    LocalProtocolError,
    RemoteProtocolError,
)
from .framing import MAX_FRAME_SIZE, FrameDecoder, OversizedFrame, encode_frame
from .protocol import (
    ALPN,
    MessageError,
    decode_request,
    decode_server_message,
    decode_stream_request,
    encode_message,
)

__all__ = [
    "ALPN",
    "MAX_FRAME_SIZE",
    "CloseCode",
    "CodecError",
    "ErrorCode",
    "FrameDecoder",
    "LocalProtocolError",
    "MessageError",
    "OversizedFrame",
    "RemoteProtocolError",
    "decode_request",
    "decode_server_message",
    "decode_stream_request",
    "encode_frame",
    "encode_message",
]
