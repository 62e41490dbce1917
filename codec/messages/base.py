"""Base classes of the control protocol's messages.

Every message is a msgspec Struct encoded as a msgpack map whose ``type`` field
names the class. Requests carry a client-chosen ``rid``; every request gets exactly
one reply with the same ``rid``. Events come from the server unasked and carry no
``rid``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["Event", "Reply", "Request", "RequestId", "StreamRequest", "Message"]

RequestId = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
"""A request id chosen by the client, echoed by the reply (0 .. 2**53)."""


class Message(msgspec.Struct, tag_field="type", omit_defaults=True, kw_only=True):
    """Any message of the control protocol."""


class Request(Message):
    """Client to server, on the control stream; answered by exactly one reply."""

    rid: RequestId


class StreamRequest(Message):
    """Client to server, as the first frame of a new bidirectional stream.

    Raw bytes may follow the frame on that stream (an upload); the server answers
    with one reply frame on the same stream.
    """

    rid: RequestId


class Reply(Message):
    """Server to client: the answer to the request with the same ``rid``."""

    rid: RequestId | None


class Event(Message):
    """Server to client, unasked, on the control stream."""
