"""The spatial layers of one local video track: which the SFU needs, at what
rate, and the lower layers' encoders.

A source at least :data:`~codec.media.simulcast.MIN_SIMULCAST_HEIGHT` high
is *layered* (:func:`~codec.media.simulcast.spatial_layers`). Its top layer
is the sender's own encoder, which follows the hop's budget through the
quality ladder; each lower layer has an encoder of its own, on the same
capture thread, at a fixed size. Each layer numbers its packets and frames
on its own (a :class:`~codec.media.VideoPacketizer` per layer, the spatial
layer in the high nibble of byte 1), so the SFU can forward any one of them
as a continuous stream (``docs/media.md`` section 7).

The SFU says which layers its subscribers get, and at what rate
(:class:`~codec.media.RateLimit` with a layer, every half second). A layer
nobody gets is not encoded. Until the SFU has said anything, or
:data:`LAYER_LIMIT_TTL_S` after it last did, only the top layer is: a room
of two, or a track nobody receives, costs one encoder.
"""

from __future__ import annotations

from collections.abc import Callable

from codec.media import NO_LIMIT_BPS, VideoPacketizer
from codec.media.simulcast import SpatialLayer, spatial_layers
from codec.media.video import VideoEncoder

from .bitrates import VBV_BUFFER_S

__all__ = ["LAYER_LIMIT_TTL_S", "LayerDelivery", "SimulcastLayers"]

LAYER_LIMIT_TTL_S = 2.0
"""A layer's rate from the SFU holds this long (seconds) unless repeated."""
LOWER_SHARE = 0.5
"""The most of a track's budget its lower layers take: the top layer (the
best picture, for the subscribers with the best paths) keeps the rest, so
that while the publisher's own estimate is still low the lower layers do not
push the top layer's frame rate down."""
RETARGET_CHANGE = 0.1
"""A lower layer's encoder is retargeted on a change of more than this."""

LayerDelivery = Callable[[list[bytes], bool, int, int], None]
"""Hands one encoded frame's datagrams to the loop: (datagrams, keyframe,
encoded bytes, spatial layer)."""


class SimulcastLayers:
    """The layers of one track and the SFU's needs of them.

    A lower layer is encoded at what the SFU asks, up to
    :meth:`~codec.media.simulcast.SpatialLayer.max_bps` at ``fps``, by an
    encoder of its own with the track's keyframe intervals (seconds).
    :meth:`set_limit` and :meth:`request_keyframe` are called on
    the loop; :meth:`encode_lower` on the capture thread.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        *,
        keyframe_interval_s: float,
        min_keyframe_interval_s: float,
    ) -> None:
        self.layers: tuple[SpatialLayer, ...] = spatial_layers(width, height)
        self.top = len(self.layers) - 1
        self._fps = fps
        self._keyframe_interval_s = keyframe_interval_s
        self._min_keyframe_interval_s = min_keyframe_interval_s
        self._limits: dict[int, tuple[int, float]] = {}
        """Layer → (bits per second, when, monotonic): the SFU's last word."""
        self._keyframes: set[int] = set()
        self._budget_bps = float("inf")
        self._encoders: dict[int, VideoEncoder] = {}
        self._packetizers: dict[int, VideoPacketizer] = {}
        self.frames = [0] * len(self.layers)
        """Frames encoded per layer (the top layer's counted by the sender)."""
        self.bytes = [0] * len(self.layers)
        """Encoded bytes per layer."""

    @property
    def layered(self) -> bool:
        """Whether the track is sent as more than one layer."""
        return self.top > 0

    def layer_id(self, layer: int) -> int:
        """The layer id byte of ``layer``'s packets (spatial in the high
        nibble; 0 for a single-layer track)."""
        return layer << 4

    def set_limit(self, layer: int, max_bps: int, now: float) -> bool:
        """The SFU's word on ``layer`` (0: nobody gets it; ``NO_LIMIT_BPS``:
        needed at any rate); ``now`` is ``time.monotonic()``. False for a
        layer this track does not have."""
        if not 0 <= layer <= self.top or not self.layered:
            return False
        self._limits[layer] = (max_bps, now)
        return True

    def wanted_bps(self, layer: int, now: float) -> int | None:
        """What ``layer`` should be encoded at (bits per second;
        ``NO_LIMIT_BPS`` for as much as the sender gives it), or None when
        it should not be encoded."""
        limit = self._limits.get(layer)
        if limit is None or now - limit[1] >= LAYER_LIMIT_TTL_S:
            return NO_LIMIT_BPS if layer == self.top else None
        return limit[0] or None

    def set_budget(self, budget_bps: float) -> None:
        """The track's share of the hop's estimate (bits per second): the
        lower layers take at most :data:`LOWER_SHARE` of it."""
        self._budget_bps = budget_bps

    def _lower_rates(self, now: float) -> dict[int, int]:
        """Lower layer → its rate now (bits per second): what the SFU asks,
        up to the layer's ceiling, scaled down to leave the top layer its
        part of the budget."""
        rates = {}
        for layer in self.layers[:-1]:
            wanted = self.wanted_bps(layer.index, now)
            if wanted is not None:
                cap = layer.max_bps(self._fps)
                rates[layer.index] = min(wanted, cap)
        total = sum(rates.values())
        room = LOWER_SHARE * self._budget_bps
        if total > room > 0:
            rates = {i: max(1, int(r * room / total)) for i, r in rates.items()}
        return rates

    def lower_bps(self, now: float) -> int:
        """What the lower layers encoded now take of the track's budget."""
        return sum(self._lower_rates(now).values())

    def count(self, layer: int, size: int) -> None:
        """One frame of ``size`` bytes encoded for ``layer``."""
        self.frames[layer] += 1
        self.bytes[layer] += size

    def request_keyframe(self, layer: int) -> None:
        """A receiver of a lower ``layer`` needs a keyframe (rate-limited by
        its encoder)."""
        self._keyframes.add(layer)

    def encoding(self) -> list[int]:
        """The lower layers with an encoder now."""
        return sorted(self._encoders)

    def stats_dict(self, now: float) -> dict[str, object]:
        """Per layer of a layered track: its size, whether it is encoded, the
        rate asked of it (None: the sender's own budget, for the top layer
        the SFU does not limit) and what it made; nothing for one layer."""
        if not self.layered:
            return {}
        layers = []
        rates = self._lower_rates(now)
        for layer in self.layers:
            wanted = rates.get(layer.index)
            if layer.index == self.top:
                wanted = self.wanted_bps(layer.index, now)
            layers.append(
                {
                    "layer": layer.index,
                    "width": layer.width,
                    "height": layer.height,
                    "encoded": wanted is not None,
                    "target_bps": None if wanted == NO_LIMIT_BPS else wanted,
                    "frames_encoded": self.frames[layer.index],
                    "bytes_encoded": self.bytes[layer.index],
                }
            )
        return {"layers": layers}

    def encode_lower(
        self,
        image: object,
        captured: float,
        now: float,
        track_id: int,
        max_payload: int,
        deliver: LayerDelivery,
    ) -> None:
        """Encode ``image`` (captured at ``captured`` on the media clock) for
        each lower layer wanted now and hand each frame to ``deliver``;
        close the encoders of layers no longer wanted."""
        rates = self._lower_rates(now)
        for layer in self.layers[:-1]:
            index = layer.index
            rate = rates.get(index)
            if rate is None:
                self._encoders.pop(index, None)
                continue
            cap = layer.max_bps(self._fps)
            encoder = self._encoders.get(index)
            if encoder is None:
                encoder = VideoEncoder(
                    layer.width,
                    layer.height,
                    self._fps,
                    rate,
                    max_bitrate_bps=cap,
                    keyframe_interval_s=self._keyframe_interval_s,
                    min_keyframe_interval_s=self._min_keyframe_interval_s,
                    vbv_buffer_s=VBV_BUFFER_S,
                )
                self._encoders[index] = encoder
            elif abs(rate - encoder.bitrate_bps) > RETARGET_CHANGE * rate:
                encoder.set_bitrate(rate)
            if index in self._keyframes:
                self._keyframes.discard(index)
                encoder.request_keyframe()
            packetizer = self._packetizers.get(index)
            if packetizer is None or packetizer.track_id != track_id:
                packetizer = self._packetizers[index] = VideoPacketizer(track_id)
            for encoded in encoder.encode(image, captured):  # type: ignore[arg-type]
                packets = packetizer.packetize(
                    encoded.data,
                    encoded.pts,
                    encoded.keyframe,
                    layer=self.layer_id(index),
                    max_payload=max_payload,
                )
                self.count(index, len(encoded.data))
                deliver(
                    [p.serialize() for p in packets],
                    encoded.keyframe,
                    len(encoded.data),
                    index,
                )
