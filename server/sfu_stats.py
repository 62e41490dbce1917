"""The SFU's counters: what :class:`~server.sfu.Forwarder` did since the server
started, and the frame drops its hops counted, for the server's stats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .sfu_hop import DELAY_BUCKET_NAMES, DROP_CAUSES, Hop

__all__ = ["ForwarderStats", "count_drops", "drop_counters", "snapshot"]


@dataclass(slots=True)
class ForwarderStats:
    """Counters since the server started (datagrams unless a name says otherwise)."""

    received: int = 0
    """Datagrams from any connection."""
    forwarded: int = 0
    """Copies handed to subscribers' connections (retransmissions not counted)."""
    dropped_not_member: int = 0
    """From a connection that is in no room."""
    dropped_foreign_track: int = 0
    """Media whose track id the sending connection does not own."""
    dropped_malformed: int = 0
    """Too short, too long, wrong version or a reserved kind."""
    dropped_too_large: int = 0
    """Copies not sent because the subscriber's connection does not carry a
    datagram that large (its path fell back to a smaller packet size since
    the publisher was told the room's size)."""
    dropped_duplicate: int = 0
    """Video from a publisher that was neither new nor missing: the second
    copy of a repair, or one too late (the receivers have it or gave up)."""
    skipped_joining: int = 0
    """Copies not sent because the subscriber started to receive the track
    mid-frame: the rest of that frame (it gets the next one whole)."""
    dropped_queue_full: int = 0
    """Copies not sent because the subscriber's datagram queue was too long
    (whole video frames and their track's frames up to the next keyframe)."""
    frames_dropped: int = 0
    """Video frames dropped whole for subscribers whose path was too slow (one
    per subscriber and frame)."""
    keyframe_requests_forwarded: int = 0
    """Keyframe requests sent to publishers (subscribers' and the SFU's own)."""
    keyframe_requests_coalesced: int = 0
    """Keyframe requests absorbed by one outstanding for the same track."""
    keyframe_requests_refused: int = 0
    """Keyframe requests for a track of another room, or one's own."""
    keyframes_forwarded: int = 0
    """Keyframes (their first datagram) received from publishers."""
    nacks_received: int = 0
    """NACK datagrams from members, about the SFU → member hop."""
    retransmissions: int = 0
    """Datagrams sent again to members from the SFU's caches (each repair
    twice: :data:`~codec.media.recovery.REPAIR_COPIES`)."""
    nack_copies_ignored: int = 0
    """Packets asked for again by a NACK's copy soon after they were resent."""
    retransmissions_refused: int = 0
    """Packets NACKed by members not sent again: not held, sent too often, or
    too late to arrive before their frame's deadline."""
    retransmissions_refused_queue: int = 0
    """Of those, packets refused because the member's queue was too long."""
    retransmissions_refused_missing: int = 0
    """Of those, packets the SFU did not hold (lost on the publisher's hop
    and not yet repaired there, or evicted)."""
    retransmissions_refused_late: int = 0
    """Of those, packets that would have arrived after their frame's deadline."""
    retransmissions_refused_exhausted: int = 0
    """Of those, packets already sent again as often as allowed."""
    retransmit_queued_behind: int = 0
    """Datagrams already queued ahead of the retransmissions when they were
    queued, summed (over ``retransmissions``: the mean wait in datagrams)."""
    nacks_sent: int = 0
    """NACK datagrams sent to publishers, about the publisher → SFU hop."""
    packets_requested: int = 0
    """Packets the SFU asked publishers for (retries included)."""
    packets_recovered: int = 0
    """Packets that arrived from publishers after the SFU asked for them."""
    per_hop_received: int = 0
    """Feedback and probe datagrams, which end at the SFU."""
    feedback_sent: int = 0
    """Feedback datagrams sent to members about what they sent the SFU."""
    feedback_read: int = 0
    """Members' feedback datagrams read into their hop's estimate."""
    rate_limits_sent: int = 0
    """Rate limits sent to publishers for subscribers whose paths are
    constrained."""
    layer_limits_sent: int = 0
    """Per-layer rate limits sent to publishers of simulcast tracks (which
    layers to encode, at what rate)."""
    dropped_unknown_layer: int = 0
    """Video whose spatial layer the track does not have (any but 0 for a
    single-layer track)."""

    def as_dict(self) -> dict[str, int]:
        return {f"sfu_{name}": getattr(self, name) for name in self.__slots__}


def drop_counters(retired: Counter[str], hops: Iterable[Hop]) -> dict[str, int]:
    """Frame drops by cause and the queue delays frame starts found, over
    ``hops`` and what the hops of members gone counted (``retired``):
    :attr:`Hop.drops`, :attr:`Hop.delay_seen`."""
    counters = Counter(retired)
    for hop in hops:
        count_drops(counters, hop)
    return {
        **{
            f"sfu_frames_dropped_{cause}": counters[f"sfu_frames_dropped_{cause}"]
            for cause in DROP_CAUSES
        },
        **{
            f"sfu_frame_starts_queue_{n}": counters[f"sfu_frame_starts_queue_{n}"]
            for n in DELAY_BUCKET_NAMES
        },
        "sfu_pacer_released": counters["sfu_pacer_released"],
        "sfu_pacer_waits": counters["sfu_pacer_waits"],
        "sfu_pacer_repairs_expired": counters["sfu_pacer_repairs_expired"],
    }


def count_drops(counters: Counter[str], hop: Hop) -> None:
    """Add ``hop``'s frame drops by cause and the queue delays its frame
    starts found to ``counters`` (named as in the SFU's stats)."""
    for cause, count in hop.drops.items():
        counters[f"sfu_frames_dropped_{cause}"] += count
    for name, count in zip(DELAY_BUCKET_NAMES, hop.delay_seen, strict=True):
        counters[f"sfu_frame_starts_queue_{name}"] += count
    counters["sfu_pacer_released"] += hop.released
    counters["sfu_pacer_waits"] += hop.waits
    counters["sfu_pacer_repairs_expired"] += hop.repairs_expired


def snapshot(
    stats: ForwarderStats,
    retired: Counter[str],
    endpoints: Iterable[Any],
    tracks: int,
) -> dict[str, int]:
    """The SFU's counters and gauges for the server's stats: ``stats``, the
    drops of the hops of members gone (``retired``) and of the ``endpoints``
    (each with its ``hop``), and how many ``tracks`` are routed."""
    hops: list[Hop] = [endpoint.hop for endpoint in endpoints]
    return {
        **stats.as_dict(),
        "sfu_connections": len(hops),
        "sfu_tracks": tracks,
        "sfu_layer_switches": sum(
            chosen.switches for hop in hops for chosen in hop.layers.values()
        ),
        "sfu_retransmit_cache_bytes": sum(hop.cache.bytes_held for hop in hops),
        **drop_counters(retired, hops),
        "sfu_hop_estimate_min_bps": min(
            (round(hop.estimator.target_bps) for hop in hops), default=0
        ),
        "sfu_paced_hops": sum(hop.pacing_bps is not None for hop in hops),
        "sfu_pacer_held": sum(hop.queued - len(hop.pending) for hop in hops),
    }
