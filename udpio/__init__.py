"""UDP for the event loop with batched system calls (GSO and GRO), shared by
the server and the client; imports nothing of ours."""

from .endpoint import (
    MAX_DATAGRAMS_PER_WAKEUP,
    MAX_QUEUED_DATAGRAMS,
    SOCKET_BUFFER_BYTES,
    Deferrable,
    UdpEndpoint,
    gso_supported,
    open_endpoint,
)
from .segments import MAX_GSO_BYTES, MAX_GSO_SEGMENTS, SendBatch, plan_batches, split

__all__ = [
    "MAX_DATAGRAMS_PER_WAKEUP",
    "MAX_GSO_BYTES",
    "MAX_GSO_SEGMENTS",
    "MAX_QUEUED_DATAGRAMS",
    "SOCKET_BUFFER_BYTES",
    "Deferrable",
    "SendBatch",
    "UdpEndpoint",
    "gso_supported",
    "open_endpoint",
    "plan_batches",
    "split",
]
