"""What a video sender makes of its share of the estimate: bitrate first, then
frame rate, then resolution, and back up.

The encoder's bitrate follows the budget in place, freely (no new encoder, no
keyframe: ``docs/media.md`` section 4.3). When the budget leaves too few bits
per pixel for a clean picture the frame rate is halved (frames skipped at the
source: the same encoder, and each frame gets twice the bits), then the
resolution halved (a new encoder, so a keyframe: rare, and held for
:data:`MIN_STEP_UP_S` before going back up). Hysteresis keeps it from flapping:
a step up needs :data:`UP_MARGIN` times the bits per pixel that a step down
gave up at. Pure: every call takes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_CORRECTION",
    "MIN_BITS_PER_PIXEL",
    "EncoderCorrection",
    "Quality",
    "QualityLadder",
    "encoder_target_bps",
]

MIN_BITS_PER_PIXEL = 0.025
"""Below this many bits per pixel per frame H.264 at ultrafast smears; step
down (640x480 at 30 fps: 230 kbit/s)."""
UP_MARGIN = 1.6
MIN_STEP_UP_S = 5.0
"""A step up waits this long after the last step (seconds)."""
_RUNGS = ((1, 1), (1, 2), (2, 2), (4, 2))
"""(resolution divisor, frame-rate divisor), best first."""


@dataclass(frozen=True, slots=True)
class Quality:
    """What the encoder should do now."""

    bitrate_bps: int
    """The encoder's target, already corrected for skipped frames."""
    fps: float
    """Frames encoded per second (the source's rate or a divisor of it)."""
    width: int
    height: int
    rung: int
    """0 for full quality; each further rung halves fps or resolution."""


class QualityLadder:
    """The ladder of one source of ``width`` x ``height`` at ``fps``."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.width = width
        self.height = height
        self.fps = fps
        self.rung = 0
        self.steps = 0
        self._changed_at = float("-inf")

    def _size(self, rung: int) -> tuple[int, int, float]:
        scale, skip = _RUNGS[rung]
        # Encoders want even sizes; keep at least 16 pixels.
        width = max(16, self.width // scale // 2 * 2)
        height = max(16, self.height // scale // 2 * 2)
        return width, height, self.fps / skip

    def _bpp(self, budget_bps: float, rung: int) -> float:
        width, height, fps = self._size(rung)
        return budget_bps / (width * height * fps)

    def update(self, budget_bps: float, now: float) -> Quality:
        """The quality for ``budget_bps`` (bits per second) at ``now``."""
        rung = self.rung
        while rung + 1 < len(_RUNGS) and self._bpp(budget_bps, rung) < (
            MIN_BITS_PER_PIXEL
        ):
            rung += 1
        if rung == self.rung and now - self._changed_at >= MIN_STEP_UP_S:
            while rung > 0 and self._bpp(budget_bps, rung - 1) >= (
                UP_MARGIN * MIN_BITS_PER_PIXEL
            ):
                rung -= 1
        if rung != self.rung:
            self.rung = rung
            self.steps += 1
            self._changed_at = now
        width, height, fps = self._size(self.rung)
        return Quality(int(budget_bps), fps, width, height, self.rung)


EFFICIENCY_WINDOW_S = 2.0
MIN_CORRECTION, MAX_CORRECTION = 0.8, 1.3
CUT_RESETS = 0.75
"""A budget under this fraction of the last one is a cut: what the encoder
made of a much higher target no longer tells what it makes of the new one
(AIMD's sawtooth, cuts to about 0.85-0.9 of the rate, keeps the factor)."""


class EncoderCorrection:
    """How much to over- or under-ask the encoder so that what it makes
    matches the budget: x264 in CBR undershoots on easy content (and the
    estimate, capped near what arrives, would then never grow to the link).

    Feed :meth:`on_frame` each frame's size and what the encoder was asked
    for it; :attr:`factor` multiplies the next target, within
    ``[0.8, 1.3]`` (more would turn into bursts on complex pictures). Keyframes
    are left out: they overshoot by design.
    """

    def __init__(self) -> None:
        self.factor = 1.0
        self._frames: list[tuple[float, int, float]] = []
        self._budget_bps: float | None = None

    def on_budget(self, budget_bps: float) -> float:
        """The budget the next frames are made for (bits per second); the
        factor to apply from now on.

        On a cut (under :data:`CUT_RESETS` of the last budget) a factor over
        1 is dropped and measured again at the new rate: x264's undershoot
        depends on the bits per frame, and a factor learnt at 2.2 Mbit/s
        (1.25-1.3) asked 1.3 times a cut estimate of 418 kbit/s after RFC
        8867's drop to 0.6 Mbit/s, so the media kept the bottleneck's queue
        full for 2 s after the estimate had been cut below the capacity.
        """
        last = self._budget_bps
        self._budget_bps = budget_bps
        if last is not None and budget_bps < CUT_RESETS * last and self.factor > 1:
            self.factor = 1.0
            self._frames.clear()
        return self.factor

    def on_frame(
        self, now: float, produced_bits: int, requested_bits: float, keyframe: bool
    ) -> float:
        """Record one frame; the factor to apply from now on."""
        if keyframe:
            return self.factor
        frames = self._frames
        frames.append((now, produced_bits, requested_bits))
        while frames and frames[0][0] < now - EFFICIENCY_WINDOW_S:
            frames.pop(0)
        if now - frames[0][0] < EFFICIENCY_WINDOW_S / 2:
            return self.factor
        requested = sum(r for _, _, r in frames)
        produced = sum(p for _, p, _ in frames)
        if requested <= 0 or produced <= 0:
            return self.factor
        # What the encoder makes of a target is ``efficiency`` times it (the
        # requested bits are what it was asked, factor included).
        efficiency = produced / requested
        self.factor = min(max(1 / efficiency, MIN_CORRECTION), MAX_CORRECTION)
        return self.factor


def encoder_target_bps(
    budget_bps: float,
    source_fps: float,
    encoded_fps: float,
    correction: float,
    ceiling_bps: float,
) -> int:
    """What to ask the encoder for (bits per second, counted at the source's
    frame rate, as x264 counts them) so that it makes ``budget_bps`` at
    ``encoded_fps``, no more than ``ceiling_bps``.

    The ceiling bounds what the encoder *makes*, so it applies before the
    :class:`EncoderCorrection`: an encoder that makes 80% of what it is asked
    is asked for up to ``ceiling_bps / 0.8`` (a ceiling applied to the
    request instead left a 640x480 stream at 1.4-1.8 Mbit/s under its 2
    Mbit/s ceiling, on a 2.5 Mbit/s path). Open the encoder with room for
    that (``MAX_CORRECTION`` times the ceiling).
    """
    # x264 counts every frame it is given as 1/fps of the source's rate,
    # so a lower frame rate needs more bits per frame.
    per_source_frame = budget_bps * source_fps / encoded_fps
    return int(min(per_source_frame, ceiling_bps) * correction)
