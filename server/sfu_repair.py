"""The SFU's loss recovery on both of its hops (``docs/media.md`` section 6).

From each publisher the SFU NACKs what it missed itself: a
:class:`~codec.media.recovery.NackGenerator` per track and spatial layer
(each simulcast layer numbers its packets on its own), driven by the
track's own packets, so no timer runs per track (:func:`nack_publisher`).
Towards each subscriber it answers the subscriber's NACKs from that hop's
retransmit cache, never bothering the publisher, and only with packets that
can still arrive before their frame's deadline (:func:`answer_nack`).
When that fails, a keyframe (:func:`ask_keyframe`).
"""

from __future__ import annotations

from codec.media import KeyframeRequest, PacketError
from codec.media.nack import nack_packets, parse_nack
from codec.media.recovery import (
    NACK_COPY_DELAY_S,
    Arrival,
    NackGenerator,
    frame_wait_s,
)

from .sfu_hop import Hop
from .sfu_stats import ForwarderStats

__all__ = ["answer_nack", "ask_keyframe", "nack_publisher"]


def nack_publisher(
    stats: ForwarderStats,
    hop: Hop,
    nacks: dict[int, NackGenerator],
    track_id: int,
    seq: int,
    now: float,
    layer: int,
) -> Arrival:
    """Track what the SFU misses of ``track_id``'s spatial ``layer`` from the
    publisher whose hop is ``hop`` (``nacks``: its generators by track id,
    the layer above bit 32) and ask for it; says whether packet ``seq`` was
    new, one the SFU missed (a repair, to be forwarded ahead of the video
    queued) or neither (not forwarded)."""
    rtt = hop.rtt_s(now)
    key = track_id | layer << 32
    generator = nacks.get(key)
    if generator is None or generator.rtt_s != rtt:
        # The hop's round trip changes every half second at most.
        if generator is None:
            generator = nacks[key] = NackGenerator(copy_delay_s=NACK_COPY_DELAY_S)
        generator.set_rtt(rtt)
        generator.set_give_up(frame_wait_s(rtt))
    generator_stats = generator.stats
    recovered = generator_stats.packets_recovered
    arrival = generator.on_packet(seq, now)
    if arrival is Arrival.FILLED:
        stats.packets_recovered += generator_stats.packets_recovered - recovered
    if not generator.waiting:
        # Nothing missing (the usual case): nothing to ask for.
        return arrival
    requested = generator_stats.packets_requested
    due = generator.due(now)
    if due:
        for packet in nack_packets(track_id, due, layer):
            hop.send_control(packet.serialize(), now)
            stats.nacks_sent += 1
        stats.packets_requested += generator_stats.packets_requested - requested
    return arrival


def answer_nack(
    stats: ForwarderStats, hop: Hop, data: bytes, now: float, max_queued: int
) -> None:
    """Answer a member's NACK (``data``) from what the SFU sent it on
    ``hop``, unless its queue holds ``max_queued`` datagrams already."""
    try:
        nack = parse_nack(memoryview(data))
    except PacketError:
        stats.dropped_malformed += 1
        return
    stats.nacks_received += 1
    seqs = nack.seqs()
    if hop.queued >= max_queued:
        stats.retransmissions_refused += len(seqs)
        stats.retransmissions_refused_queue += len(seqs)
        return
    cache = hop.cache.stats
    before = (cache.missing, cache.too_late, cache.exhausted, cache.copies_ignored)
    resent = hop.cache.retransmit(
        nack.track_id, seqs, now, deadline_s=hop.retransmit_budget_s(now)
    )
    missing, late, exhausted, copies = (
        after - was
        for after, was in zip(
            (cache.missing, cache.too_late, cache.exhausted, cache.copies_ignored),
            before,
            strict=True,
        )
    )
    stats.retransmissions_refused_missing += missing
    stats.retransmissions_refused_late += late
    stats.retransmissions_refused_exhausted += exhausted
    stats.retransmissions_refused += missing + late + exhausted
    stats.nack_copies_ignored += copies
    for datagram in resent:
        stats.retransmit_queued_behind += hop.queued
        hop.send(datagram, now, repair=True)
    stats.retransmissions += len(resent)


def ask_keyframe(
    stats: ForwarderStats,
    hop: Hop,
    asked_at: dict[int, float],
    key: int,
    now: float,
    interval: float,
) -> None:
    """Ask the publisher whose hop is ``hop`` for a keyframe of ``key`` (a
    track id, the spatial layer above bit 32) unless a request for it is
    outstanding: in ``asked_at``, less than ``interval`` seconds old (the
    arrival of a keyframe removes it). Keyframes are the last resort of
    recovery: one loss never costs two however many ask."""
    asked = asked_at.get(key)
    if asked is not None and now - asked < interval:
        stats.keyframe_requests_coalesced += 1
        return
    asked_at[key] = now
    track_id, layer = key & 0xFFFFFFFF, key >> 32
    hop.send_control(KeyframeRequest(track_id, layer << 4).serialize(), now)
    stats.keyframe_requests_forwarded += 1
