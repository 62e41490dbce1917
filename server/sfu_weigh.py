"""The SFU weighs each published video track against its subscribers'
paths, every :data:`RATE_LIMIT_INTERVAL_S` per track (:class:`Weigher`):
it probes the paths that limit it, and tells the publisher the most it
should send (a ``RateLimit`` datagram): for a single-layer track the
slowest constrained subscriber's share of its path, for a track sent as
simulcast layers each subscriber's layer and the rate of every layer
(:mod:`server.sfu_layers`). A path's share for one video track leaves each
audio track routed to it :data:`AUDIO_SHARE_BPS`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from codec.media import RateLimit
from codec.media.simulcast import layer_for_view

from .sfu_endpoint import Endpoint
from .sfu_hop import Hop
from .sfu_layers import PublishedLayers, SubscriberPath, weigh_layers

if TYPE_CHECKING:
    from .sfu import Forwarder

__all__ = ["AUDIO_SHARE_BPS", "CONGESTED_QUEUE_S", "RATE_LIMIT_INTERVAL_S", "Weigher"]

RATE_LIMIT_INTERVAL_S = 0.5
"""How often (seconds) a publisher's video track is weighed against what its
subscribers' paths carry."""
CONGESTED_QUEUE_S = 0.05
"""A subscriber's queue that waited longer than this (seconds, a third of
the delay at which frames are dropped) shows its path congested: only then
does a small cut of its estimate take its simulcast layer down."""
AUDIO_SHARE_BPS = 48_000
"""What a path's limit keeps for each audio track routed to it before its
video tracks share the rest (the client's reserve for a microphone: Opus at
32 kbit/s and its headers)."""


class Weigher:
    """Weighs the tracks of ``forwarder``'s members (its endpoints, probes,
    stats, queue bound and keyframe requests)."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    def weigh(
        self, publisher: Endpoint, track_id: int, hops: tuple[Hop, ...], now: float
    ) -> None:
        """Every :data:`RATE_LIMIT_INTERVAL_S`, limit ``track_id`` to what its
        most constrained subscriber path takes, while one is constrained."""
        weighed_at = publisher.weighed_at.get(track_id)
        if weighed_at is not None and now - weighed_at < RATE_LIMIT_INTERVAL_S:
            return
        publisher.weighed_at[track_id] = now
        if self.forwarder.probes is not None:
            # A path that limits a publisher (or its layer) is probed, so
            # that the limit opens as soon as the path carries more
            # (server/sfu_probe.py).
            for hop in hops:
                if clusters := hop.path.probes(now):
                    self.forwarder.probes.add(hop, clusters, now)
        if track_id in publisher.layered:
            self._weigh_layers(publisher, track_id, hops, now)
            return
        # The limit is repeated while the path is constrained, even when the
        # publisher already sends less: it keeps the publisher there, and a
        # lapse would let it climb back over the path within seconds.
        shares = [
            self._video_share(publisher, hops, hop, limit)
            for hop in hops
            if (limit := hop.path.limit_bps(now)) is not None
        ]
        if not shares:
            return
        datagram = RateLimit(track_id, int(min(shares))).serialize()
        publisher.hop.send_control(datagram, now)
        self.forwarder.stats.rate_limits_sent += 1

    def _weigh_layers(
        self, publisher: Endpoint, track_id: int, hops: tuple[Hop, ...], now: float
    ) -> None:
        """Choose each subscriber's layer of a layered track and tell the
        publisher which layers to encode at what rate (``server.sfu_layers``):
        no limit from the slowest subscriber for everyone."""
        if not hops:
            return
        published = publisher.layered[track_id]
        paths = []
        for hop in hops:
            limit = hop.path.limit_bps(now)
            subscriber = self.forwarder.endpoints.get(hop.conn)
            view = None if subscriber is None else subscriber.views.get(track_id)
            paths.append(
                SubscriberPath(
                    None
                    if limit is None
                    else self._video_share(publisher, hops, hop, limit),
                    hop.congested(now, self.forwarder.max_queued, CONGESTED_QUEUE_S),
                    # Without probes nothing will measure the path: the
                    # share is taken as it is, as before probes.
                    self.forwarder.probes is None or hop.path.measured,
                    hop.path.probed_at,
                    None if view is None else layer_for_view(published.layers, *view),
                )
            )
        limits = weigh_layers(
            track_id,
            published,
            [hop.layers[track_id] for hop in hops],
            paths,
            now,
            lambda layer: self.forwarder.ask_keyframe(publisher, track_id, now, layer),
        )
        for datagram in limits:
            publisher.hop.send_control(datagram, now)
        self.forwarder.stats.layer_limits_sent += len(limits)
        if self.forwarder.probes is not None and len(hops) > 1:
            self._probe_for_layers(published, hops, paths, track_id, now)

    def _probe_for_layers(
        self,
        published: PublishedLayers,
        hops: tuple[Hop, ...],
        paths: list[SubscriberPath],
        track_id: int,
        now: float,
    ) -> None:
        """Probe the paths of subscribers held under the next layer by their
        share, for the limit that would take them up: what a lower layer
        carries cannot show room for a larger one."""
        assert self.forwarder.probes is not None
        for hop, path in zip(hops, paths, strict=True):
            share = path.share_bps
            wanted = hop.layers[track_id].selector.probe_share(
                published.layers, published.fps, share, path.max_layer
            )
            limit = hop.path.limit_bps(now)
            if wanted is None or not share or limit is None:
                continue
            if clusters := hop.path.probe_for(limit * wanted / share, now):
                self.forwarder.probes.add(hop, clusters, now)

    def _video_share(
        self, publisher: Endpoint, hops: tuple[Hop, ...], hop: Hop, limit: float
    ) -> float:
        """What one video track routed to ``hop`` may take of the path's
        ``limit`` (bits per second): each audio track keeps
        :data:`AUDIO_SHARE_BPS`, the video tracks share the rest, and none
        gets less than an even split of the whole. A track counts as video
        once the SFU weighed it (a video track that has not yet sent counts
        as audio until it does). ``publisher`` and the ``hops`` its track goes
        to are the room: every member's tracks go to all the others, so what
        ``hop`` receives is every track of the room's other members."""
        members: list[Endpoint | None] = [publisher]
        members += (self.forwarder.endpoints.get(other.conn) for other in hops)
        video = audio = 0
        for endpoint in members:
            if endpoint is None or endpoint.room is not publisher.room:
                continue  # gone, or routed elsewhere since
            if endpoint.hop is hop:
                continue
            for track_id in endpoint.routes:
                if track_id in endpoint.weighed_at:
                    video += 1
                else:
                    audio += 1
        video = max(1, video)
        return max((limit - AUDIO_SHARE_BPS * audio) / video, limit / (video + audio))
