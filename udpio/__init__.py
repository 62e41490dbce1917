"""UDP for the event loop with batched system calls (GSO and GRO), and the path
MTU search that sizes the QUIC packets sent on it; shared by the server and
the client. Of ours it imports only the pure search (:mod:`codec.pmtu`)."""

from .endpoint import (
    MAX_DATAGRAMS_PER_WAKEUP,
    MAX_QUEUED_DATAGRAMS,
    SOCKET_BUFFER_BYTES,
    Deferrable,
    UdpEndpoint,
    gso_supported,
    open_endpoint,
)
from .mtu_probe import PathMtuProber
from .segments import MAX_GSO_BYTES, MAX_GSO_SEGMENTS, SendBatch, plan_batches, split

__all__ = [
    "MAX_DATAGRAMS_PER_WAKEUP",
    "MAX_GSO_BYTES",
    "MAX_GSO_SEGMENTS",
    "MAX_QUEUED_DATAGRAMS",
    "SOCKET_BUFFER_BYTES",
    "Deferrable",
    "PathMtuProber",
    "SendBatch",
    "UdpEndpoint",
    "gso_supported",
    "open_endpoint",
    "plan_batches",
    "split",
]
