"""Simulcast: the spatial layers a video source is sent as, what each needs,
and which one the SFU forwards a subscriber.

A source at least :data:`MIN_SIMULCAST_HEIGHT` pixels high is offered as up
to :data:`~codec.media.packet.MAX_SPATIAL_LAYERS` spatial layers: a quarter,
half and the whole of its size, those at least :data:`MIN_LAYER_HEIGHT` high
(640x480: 320x240 and 640x480; 1280x720: 320x180, 640x360 and 1280x720).
Layer 0 is the smallest. A smaller source is one layer (id 0), as before
simulcast. Both ends compute the layers from the size the track was
announced with, so nothing else about them crosses the wire.

:class:`LayerSelector` chooses, for one subscriber of one track, the layer
its path's share fits, no larger than its view needs (:func:`layer_for_view`;
``docs/media.md`` section 7). Pure: every call takes ``now`` (seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from .packet import MAX_SPATIAL_LAYERS

__all__ = [
    "MIN_LAYER_HEIGHT",
    "MIN_SIMULCAST_HEIGHT",
    "LayerSelector",
    "SpatialLayer",
    "layer_for_view",
    "spatial_layers",
]

MIN_SIMULCAST_HEIGHT = 360
"""Sources lower than this (pixels) are sent as one layer: their half is
too small to be worth a second encoder."""
MIN_LAYER_HEIGHT = 180
"""The lowest layer height (pixels) worth sending."""
MIN_BITS_PER_PIXEL = 0.05
"""A layer needs at least this many bits per pixel per frame to look better
than the layer under it (640x480 at 30 fps: 460 kbit/s; 320x240: 115
kbit/s); under it the SFU forwards the layer below."""
UP_MARGIN = 1.3
"""A layer is chosen going up only when the share is this many times its
need (hysteresis: going down happens under 1.0)."""
UP_HOLD_S = 2.0
"""Least time (seconds) after a change before a step up for a larger share."""
PROBE_HOLD_S = 8.0
"""Time (seconds) without a change or a cut before trying the next layer up
(a path's estimate grows only with what it carries, so it cannot show room
for a layer it is not sent)."""
MAX_PROBE_HOLD_S = 64.0
"""The longest wait between tries once tries failed (doubling from
:data:`PROBE_HOLD_S`)."""
PROBE_WINDOW_S = 4.0
"""After trying a layer up, how long (seconds) only a cut of the share, not
its size, takes it back down; a cut within it doubles the wait."""
PROBE_SETTLE_S = 3 * PROBE_WINDOW_S
"""A try up that was not followed by a step down for this long (seconds)
held: the next wait is :data:`PROBE_HOLD_S` again."""
PROBE_MIN_SHARE = 0.75
"""A try up needs the share to be at least this fraction of the next
layer's need. The estimate of a path grows to at most 1.25 times what it
carries, so the share of a 300 kbit/s path stays under 330 kbit/s and it is
never tried on a 640x480 layer (460 kbit/s), where a try costs a freeze (the
larger layer's keyframe alone takes a second to cross it); a path that
carries a lower layer at its publisher's ceiling (three times its default
rate: 450 kbit/s at 320x240) shows enough to be tried."""
DEEP_FRACTION = 0.5
"""Under this fraction of the current layer's need the share takes the
layer down at once even where the path shows no queue (a fraction only:
the SFU's estimate of a fast path is cut now and then by a loaded machine's
timing, and a layer dropped for that costs the picture for seconds)."""
CUT_FRACTION = 0.9
"""A share under this fraction of the last one is a cut (congestion)."""


@dataclass(frozen=True, slots=True)
class SpatialLayer:
    """One spatial layer of a track: its id on the wire and its size."""

    index: int
    """The spatial layer id (0 the smallest), the high nibble of byte 1."""
    width: int
    height: int

    def max_bps(self, fps: float) -> int:
        """The most a lower layer is encoded at (bits per second): three
        times its default rate (0.055 bit per pixel per frame, at least 150
        kbit/s; 320x240 at 30 fps: 450 kbit/s), so that a path that takes
        more shows it (:data:`PROBE_MIN_SHARE`)."""
        return 3 * max(150_000, int(self.width * self.height * fps * 0.055))

    def min_bps(self, fps: float) -> float:
        """The least rate (bits per second) at which the layer is worth
        forwarding (:data:`MIN_BITS_PER_PIXEL`)."""
        return self.width * self.height * fps * MIN_BITS_PER_PIXEL


def spatial_layers(width: int, height: int) -> tuple[SpatialLayer, ...]:
    """The layers a ``width`` x ``height`` source is sent as, smallest first
    (one, id 0, for a source under :data:`MIN_SIMULCAST_HEIGHT`)."""
    if height < MIN_SIMULCAST_HEIGHT:
        return (SpatialLayer(0, width, height),)
    sizes = []
    for divisor in (4, 2, 1):
        h = height // divisor & ~1
        if h >= MIN_LAYER_HEIGHT:
            sizes.append((width // divisor & ~1, h))
    sizes = sizes[-MAX_SPATIAL_LAYERS:]
    return tuple(SpatialLayer(i, w, h) for i, (w, h) in enumerate(sizes))


def layer_for_view(layers: tuple[SpatialLayer, ...], width: int, height: int) -> int:
    """The largest layer a view of ``width`` x ``height`` pixels needs: the
    smallest at least as large in both, or the top when none is (0 x 0
    asks for no limit: the top)."""
    if width <= 0 or height <= 0:
        return layers[-1].index
    for layer in layers:
        if layer.width >= width and layer.height >= height:
            return layer.index
    return layers[-1].index


def _capped_top(layers: tuple[SpatialLayer, ...], max_layer: int | None) -> int:
    """The largest layer a subscriber may get: the top, or its view's cap."""
    top = len(layers) - 1
    return top if max_layer is None else min(max(max_layer, 0), top)


class LayerSelector:
    """Which spatial layer one subscriber of one track should get.

    :meth:`choose` takes the track's layers and what the subscriber's path
    may take of it (``share_bps``; None when the path limits nothing), and
    returns the target layer. Down at
    once when the share falls under the current layer's need and the path
    shows a queue, or under :data:`DEEP_FRACTION` of it; up when it is
    :data:`UP_MARGIN` over the next's, :data:`UP_HOLD_S` after a change; and
    a try of the next layer up after :data:`PROBE_HOLD_S` without a change or
    a cut (the estimate of a path cannot grow past what it is sent, so it
    cannot show room for a layer it does not get) when the share is at least
    :data:`PROBE_MIN_SHARE` of the next layer's need; a cut during a try
    takes it back down and doubles the wait. The timed try is left out
    while the SFU's probes of the path answer (``probed_at``): a probe that
    finds room for the next layer raises the share, which takes it up by
    the margin rule, and one that finds none keeps it where it is.

    A path nothing is known of yet (``known`` false: its estimate is the
    start guess) starts on the lowest layer, as libwebrtc and mediasoup
    start low; once it is known it goes at once to the highest layer the
    share covers with :data:`UP_MARGIN`, without the hold (a fast path goes
    to the top as soon as its first probe returns). A path never measured
    (a member that sends no feedback) is taken on its guess after
    :data:`PROBE_HOLD_S`. ``max_layer`` caps every choice (the
    subscriber's view).
    """

    __slots__ = (
        "target",
        "_changed_at",
        "_probe_hold",
        "_probe_at",
        "_share",
        "_guessed",
    )

    def __init__(self) -> None:
        self.target: int | None = None
        """The layer chosen last (None before the first choice)."""
        self._changed_at = float("-inf")
        self._probe_hold = PROBE_HOLD_S
        self._probe_at: float | None = None
        self._share: float | None = None
        self._guessed = False
        """The target was chosen before anything was known of the path."""

    def choose(
        self,
        layers: tuple[SpatialLayer, ...],
        fps: float,
        share_bps: float | None,
        now: float,
        congested: bool = True,
        *,
        known: bool = True,
        probed_at: float | None = None,
        max_layer: int | None = None,
    ) -> int:
        """The layer to forward from now (see the class). ``congested``:
        the path to the subscriber shows a queue (frames dropped or waiting);
        without one, a share under the current layer's need takes it down
        only under :data:`DEEP_FRACTION` of it. ``known``: the share rests on
        a measure of the path; ``probed_at``: when (seconds) a probe of the
        path last returned (None: never); ``max_layer``: the largest layer
        the subscriber's view needs (None: the top)."""
        top = _capped_top(layers, max_layer)
        if self.target is None and not known and share_bps is not None:
            self._guessed = True
            self._share = share_bps
            return self._set(0, now)
        if self._guessed and not known and now - self._changed_at < PROBE_HOLD_S:
            return self.target or 0  # the guess is no reason to go up
        if self._guessed:
            # The first choice on what is known (or, when nothing has been
            # measured for as long as a timed try waits, on the guess): up
            # at once, with the margin of any step up.
            self._guessed = False
            self._share = share_bps
            fit = top
            if share_bps is not None:
                fit = max(
                    (
                        layer.index
                        for layer in layers[: top + 1]
                        if share_bps >= UP_MARGIN * layer.min_bps(fps)
                    ),
                    default=0,
                )
            return self._set(fit, now)
        cut = (
            share_bps is not None
            and self._share is not None
            and share_bps < CUT_FRACTION * self._share
        )
        if cut:
            self._changed_at = now
        self._share = share_bps
        if share_bps is None:
            return self._set(top, now)
        fit = 0
        for layer in layers[: top + 1]:
            if share_bps >= layer.min_bps(fps):
                fit = layer.index
        if self.target is None:
            return self._set(fit, now)
        current = min(self.target, top)
        tried = None if self._probe_at is None else now - self._probe_at
        if tried is not None and tried >= PROBE_SETTLE_S:
            self._probe_at = tried = None
            self._probe_hold = PROBE_HOLD_S  # the try held
        if current > fit:
            if tried is not None and tried < PROBE_WINDOW_S and not cut:
                return current
            deep = share_bps < DEEP_FRACTION * layers[current].min_bps(fps)
            if not congested and not deep:
                return self._set(current, now)
            if tried is not None:
                # Down soon after a try: it failed, wait longer for the next.
                self._probe_at = None
                self._probe_hold = min(2 * self._probe_hold, MAX_PROBE_HOLD_S)
            return self._set(fit, now)
        if current < top and now - self._changed_at >= UP_HOLD_S:
            up = layers[current + 1]
            if share_bps >= UP_MARGIN * up.min_bps(fps):
                return self._set(current + 1, now)
            told = probed_at is not None and now - probed_at < self._probe_hold
            if (
                not told
                and now - self._changed_at >= self._probe_hold
                and share_bps >= PROBE_MIN_SHARE * up.min_bps(fps)
            ):
                self._probe_at = now
                return self._set(current + 1, now)
        return self._set(current, now)

    def probe_share(
        self,
        layers: tuple[SpatialLayer, ...],
        fps: float,
        share_bps: float | None,
        max_layer: int | None = None,
    ) -> float | None:
        """The share (bits per second) a probe of the path should look for:
        what takes the target to the next layer up (:data:`UP_MARGIN` times
        its need), or None when nothing is to be learnt (at the top or the
        view's cap, the share there already, or under
        :data:`PROBE_MIN_SHARE` of the next layer's need: a try the timed
        rule would not make either)."""
        top = _capped_top(layers, max_layer)
        if self.target is None or share_bps is None or self.target >= top:
            return None
        need = layers[self.target + 1].min_bps(fps)
        if not PROBE_MIN_SHARE * need <= share_bps < UP_MARGIN * need:
            return None
        return UP_MARGIN * need

    def _set(self, layer: int, now: float) -> int:
        if layer != self.target:
            self.target = layer
            self._changed_at = now
        return layer
