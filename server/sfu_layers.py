"""Simulcast at the SFU: which spatial layer of a track each subscriber gets,
and which layers (at what rates) its publisher is asked to encode.

A video track announced at least :data:`~codec.media.simulcast.MIN_SIMULCAST_HEIGHT`
high is *layered* (:class:`PublishedLayers`): its publisher numbers each
spatial layer's packets and frames on their own (``docs/media.md`` section 7)
and sends the layers the SFU asks for. Per subscriber the SFU forwards one
layer (:class:`SubscriberLayer`) and rewrites its sequence and frame numbers
so that the subscriber sees one continuous stream across switches: a switch
happens only at a keyframe of the target layer (which the SFU asks for), and
the new layer's numbers are offset to follow the last ones forwarded. Going
down happens at once: nothing more of the current layer is forwarded, the
next thing the subscriber gets is the lower layer's keyframe. The receiver
then needs nothing special: its reassembler sees a frame cut short followed
by a keyframe (which ends the wait for it), its NACK generator no gap.

Every half second :func:`weigh_layers` runs the :class:`LayerSelector` of
each subscriber on what is known of its path (:class:`SubscriberPath`: its
share, None when the path limits nothing; whether the SFU measured it yet;
when its last probe returned) and its view (the largest layer it asked
for), and tells the publisher, per layer, the least share among the
subscribers forwarded it (0 for a layer nobody gets: not encoded). A track
with one subscriber gets the top layer (or the one its view needs) and its
path's limit once its path is measured (the lowest layer until then), as a
single-layer track does: one encoder, no CPU spent on layers nobody needs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from codec.media.packet import NO_LIMIT_BPS, RateLimit
from codec.media.seqnum import seq_delta
from codec.media.simulcast import (
    LayerSelector,
    SpatialLayer,
    spatial_layers,
)

__all__ = [
    "PublishedLayers",
    "SubscriberLayer",
    "SubscriberPath",
    "layered",
    "route_layers",
    "weigh_layers",
]

_U16 = struct.Struct(">H")
_SEQ_OFFSET = 8
_FRAME_OFFSET = 14


class PublishedLayers:
    """A layered track at its publisher: its layers and what each arrives at."""

    __slots__ = ("layers", "fps")

    def __init__(self, layers: tuple[SpatialLayer, ...], fps: float) -> None:
        self.layers = layers
        self.fps = fps

    @property
    def top(self) -> int:
        return len(self.layers) - 1


def layered(width: int, height: int, fps: float) -> PublishedLayers | None:
    """The layers of a video track announced at this size, or None when it is
    sent as one layer."""
    layers = spatial_layers(width, height)
    if len(layers) < 2:
        return None
    return PublishedLayers(layers, fps or 30.0)


class SubscriberLayer:
    """The layer one subscriber gets of one layered track, and the offsets
    that make its sequence and frame numbers one stream."""

    __slots__ = (
        "selector",
        "target",
        "current",
        "switches",
        "_seq_offset",
        "_frame_offset",
        "_next_seq",
        "_next_frame",
        "_switch_seq",
    )

    def __init__(self, target: int) -> None:
        self.selector = LayerSelector()
        self.target = target
        """The layer wanted; forwarding switches to it at its next keyframe."""
        self.current: int | None = None
        """The layer forwarded now (None until the target's first keyframe,
        and between a step down and the lower layer's keyframe)."""
        self.switches = 0
        self._seq_offset = 0
        self._frame_offset = 0
        self._next_seq: int | None = None
        self._next_frame: int | None = None
        self._switch_seq = 0

    @property
    def layer(self) -> int:
        """The layer this subscriber gets, or will at the target's keyframe."""
        return self.target if self.current is None else self.current

    def retarget(self, target: int) -> bool:
        """Aim at ``target``; going down stops the current layer at once.
        Says whether the target's keyframe is needed."""
        if self.current is not None and target < self.current:
            self.current = None
        self.target = target
        return self.current != target

    def forward(
        self, data: bytes, layer: int, frame_start: bool, keyframe: bool
    ) -> bytes | None:
        """The datagram to send this subscriber for ``data`` of spatial
        ``layer`` (renumbered), or None when it gets another layer. The hot
        path: a comparison, and for the forwarded layer two additions."""
        if layer != self.current:
            if layer != self.target or not (keyframe and frame_start):
                return None
            self._switch(data, layer)
        seq = _U16.unpack_from(data, _SEQ_OFFSET)[0]
        if seq_delta(seq, self._switch_seq) < 0:
            return None  # a late repair of before the switch: not this stream
        out_seq = (seq + self._seq_offset) & 0xFFFF
        frame = _U16.unpack_from(data, _FRAME_OFFSET)[0]
        out_frame = (frame + self._frame_offset) & 0xFFFF
        if self._next_seq is None or seq_delta(out_seq, self._next_seq) >= 0:
            self._next_seq = (out_seq + 1) & 0xFFFF
        if self._next_frame is None or seq_delta(out_frame, self._next_frame) >= 0:
            self._next_frame = (out_frame + 1) & 0xFFFF
        if out_seq == seq and out_frame == frame:
            return data
        return b"".join(
            (
                data[:_SEQ_OFFSET],
                _U16.pack(out_seq),
                data[_SEQ_OFFSET + 2 : _FRAME_OFFSET],
                _U16.pack(out_frame),
                data[_FRAME_OFFSET + 2 :],
            )
        )

    def _switch(self, data: bytes, layer: int) -> None:
        """Start forwarding ``layer`` at this keyframe: its numbers follow the
        last ones forwarded."""
        seq = _U16.unpack_from(data, _SEQ_OFFSET)[0]
        frame = _U16.unpack_from(data, _FRAME_OFFSET)[0]
        if self._next_seq is not None and self._next_frame is not None:
            self._seq_offset = (self._next_seq - seq) & 0xFFFF
            self._frame_offset = (self._next_frame - frame) & 0xFFFF
        if self.current is not None or self._next_seq is not None:
            self.switches += 1
        self._switch_seq = seq
        self.current = layer


class _Subscriber(Protocol):
    layers: dict[int, SubscriberLayer]


def route_layers(
    published: dict[int, PublishedLayers],
    track_ids: Iterable[int],
    subscribers: Iterable[_Subscriber],
    sizes: Mapping[int, tuple[int, int, float]],
) -> None:
    """Keep in ``published`` the layered tracks among ``track_ids`` (a video
    track is layered by its announced width, height and frame rate in
    ``sizes``) and a layer choice for each of their ``subscribers`` (their
    hops; a new one aims at the lowest layer)."""
    for track_id in track_ids:
        layers = published.get(track_id)
        if layers is None and track_id in sizes:
            layers = layered(*sizes[track_id])
            if layers is None:
                continue
            published[track_id] = layers
        if layers is None:
            continue
        for subscriber in subscribers:
            if track_id not in subscriber.layers:
                # The lowest until the first weighing says otherwise: the
                # keyframe a new subscriber asks for at once must not be the
                # top layer's on a path nothing is known of.
                subscriber.layers[track_id] = SubscriberLayer(0)


@dataclass(frozen=True, slots=True)
class SubscriberPath:
    """What the SFU knows of one subscriber's path and view, for
    :func:`weigh_layers`."""

    share_bps: float | None
    """What the track may take of the path (bits per second; None:
    the path limits nothing)."""
    congested: bool = False
    """The SFU's queue to the subscriber shows congestion."""
    known: bool = True
    """The share rests on a measure of the path, not the start guess."""
    probed_at: float | None = None
    """When (seconds) a probe of the path last returned (None: never)."""
    max_layer: int | None = None
    """The largest layer the subscriber's view needs (None: the top)."""


def weigh_layers(
    track_id: int,
    published: PublishedLayers,
    subscribers: Sequence[SubscriberLayer],
    paths: Sequence[SubscriberPath],
    now: float,
    ask_keyframe: Callable[[int], None],
) -> list[bytes]:
    """Choose each subscriber's layer from what is known of its path and
    its view, ask for the keyframes the switches need, and return the rate
    limits to send the publisher: one per layer, the least share of the
    subscribers that get it, 0 for a layer nobody gets."""
    top = published.top
    needs: dict[int, int] = {}
    for subscriber, path in zip(subscribers, paths, strict=True):
        share = path.share_bps
        cap = top if path.max_layer is None else min(path.max_layer, top)
        forwarded = subscriber.current
        if (
            not path.known
            and subscriber.selector.target is None
            and forwarded is not None
            and forwarded <= cap
        ):
            # Forwarded a layer already (while it was the only subscriber):
            # kept until its path is measured, not dropped to the start
            # layer and taken up again a moment later.
            target = forwarded
        elif len(subscribers) == 1:
            # The only subscriber: the top layer (or its view's), whose
            # encoder follows the path's limit, once the path is measured;
            # the lowest until then, as for any new subscription.
            target = cap if path.known else 0
        else:
            target = subscriber.selector.choose(
                published.layers,
                published.fps,
                share,
                now,
                path.congested,
                known=path.known,
                probed_at=path.probed_at,
                max_layer=path.max_layer,
            )
        if subscriber.retarget(target):
            ask_keyframe(target)
        need = NO_LIMIT_BPS if share is None else max(1, int(share))
        if not path.known:
            # Nothing measured yet: the start layer at its default rate, not
            # at the start guess's share (a 300 kbit/s path sent 320x240 at
            # its 450 kbit/s ceiling until its probe returned froze 1.3 s).
            need = min(need, published.layers[target].max_bps(published.fps) // 3)
        needs[target] = min(needs.get(target, NO_LIMIT_BPS), need)
        current = subscriber.current
        if current is not None and current != target:
            # Going up: the layer forwarded now is needed until the target's
            # keyframe comes (stopping it at once froze the picture for the
            # 0.3-0.4 s that keyframe took).
            needs[current] = min(needs.get(current, NO_LIMIT_BPS), need)
    return [
        RateLimit(track_id, needs.get(layer.index, 0), layer.index).serialize()
        for layer in published.layers
    ]
