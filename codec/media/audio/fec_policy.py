"""How much in-band FEC the talker's Opus encoder carries: its expected loss
(and bitrate), set from its listeners' loss reports.

Each listener reports, every second or two, the share of this talker's
frames it lost on the way (:class:`LossCounter` makes the figure from the
jitter buffer's counters). :class:`FecPolicy` follows the worst listener
heard from recently: it rises at once (a loss costs now, FEC costs a few
bits), falls slowly (losses come in bursts; one clean report should not
strip the protection) and stays between a floor (some FEC for a stray loss,
which a clean link still has) and a ceiling. With the loss the bitrate
rises too, from 32 kbit/s on a clean link to 48 at 6 %, so that the FEC
copy does not take its bits from the speech itself: on the virtual chain
of ``bench/audio_factors.py`` that is what pays (at 2 % loss, 40 kbit/s
scored 3.77 in wideband PESQ and 32 kbit/s 3.49, whether FEC expected 2 %
or 8 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .opus import DEFAULT_BITRATE_BPS

__all__ = ["FecPolicy", "FecSetting", "LossCounter", "LossReportGate"]


@dataclass(frozen=True, slots=True)
class FecSetting:
    """What the encoder should run at."""

    expected_loss_pct: int
    """Opus's ``OPUS_SET_PACKET_LOSS_PERC`` (0..100)."""
    bitrate_bps: int


class FecPolicy:
    """The talker's side: listeners' reports in, the encoder's setting out.

    ``floor_pct`` and ``ceiling_pct`` bound the expected loss (percent);
    ``fall_half_life_s``: how fast it falls after the loss ends (seconds for
    the excess over the floor to halve); ``stale_s``: a listener not heard
    from for that long no longer counts (a listener reports only while we
    talk, so a pause alone should not forget it; one that left is forgotten
    at once, :meth:`forget`).
    The bitrate is ``base_bitrate_bps`` up to ``boost_from_pct`` of expected
    loss and rises linearly to ``max_bitrate_bps`` at ``boost_full_pct``.
    """

    def __init__(
        self,
        *,
        floor_pct: float = 1.0,
        ceiling_pct: float = 25.0,
        fall_half_life_s: float = 8.0,
        stale_s: float = 20.0,
        base_bitrate_bps: int = DEFAULT_BITRATE_BPS,
        max_bitrate_bps: int = 48_000,
        boost_from_pct: float = 1.0,
        boost_full_pct: float = 6.0,
    ) -> None:
        if not 0.0 <= floor_pct <= ceiling_pct <= 100.0:
            raise ValueError(
                f"expected loss bounds {floor_pct}..{ceiling_pct} % are not "
                "0 <= floor <= ceiling <= 100"
            )
        if not boost_from_pct < boost_full_pct:
            raise ValueError("boost_from_pct must be below boost_full_pct")
        self.floor_pct = floor_pct
        self.ceiling_pct = ceiling_pct
        self.fall_half_life_s = fall_half_life_s
        self.stale_s = stale_s
        self.base_bitrate_bps = base_bitrate_bps
        self.max_bitrate_bps = max_bitrate_bps
        self.boost_from_pct = boost_from_pct
        self.boost_full_pct = boost_full_pct
        self._reports: dict[str, tuple[float, float]] = {}
        """listener -> (loss percent, when reported)."""
        self._level_pct = floor_pct
        self._updated_s: float | None = None

    def report(self, listener: str, lost_fraction: float, now: float) -> None:
        """``listener`` lost ``lost_fraction`` (0..1) of our frames in its last
        period; reported at ``now`` (seconds). Raises :class:`ValueError` for
        a fraction outside 0..1."""
        if not 0.0 <= lost_fraction <= 1.0 or math.isnan(lost_fraction):
            raise ValueError(f"a lost fraction is 0..1, not {lost_fraction}")
        self._reports[listener] = (lost_fraction * 100.0, now)
        self._update(now)

    def forget(self, listener: str) -> None:
        """``listener`` left: its reports no longer count."""
        self._reports.pop(listener, None)

    @property
    def listeners(self) -> set[str]:
        """Who has reported and is not forgotten yet."""
        return set(self._reports)

    def setting(self, now: float) -> FecSetting:
        """The encoder's setting at ``now`` (seconds)."""
        self._update(now)
        level = self._level_pct
        share = (level - self.boost_from_pct) / (
            self.boost_full_pct - self.boost_from_pct
        )
        share = min(1.0, max(0.0, share))
        bitrate = self.base_bitrate_bps + share * (
            self.max_bitrate_bps - self.base_bitrate_bps
        )
        return FecSetting(round(level), int(round(bitrate, -3)))

    def _update(self, now: float) -> None:
        for listener, (_, at) in list(self._reports.items()):
            if now - at > self.stale_s:
                del self._reports[listener]
        worst = max((pct for pct, _ in self._reports.values()), default=0.0)
        wanted = min(self.ceiling_pct, max(self.floor_pct, worst))
        if self._updated_s is not None and wanted < self._level_pct:
            decay = 0.5 ** ((now - self._updated_s) / self.fall_half_life_s)
            wanted += (self._level_pct - wanted) * decay
        self._level_pct = wanted
        self._updated_s = now


class LossCounter:
    """The listener's side, per speaker: the share of frames lost since the
    last report, from the jitter buffer's running counters.

    A period closes only once ``min_frames`` frames were due in it: in a
    pause a speaker sends one keep-alive a second, and one of two lost is
    not a 50 % loss rate worth reporting."""

    def __init__(self, min_frames: int = 25) -> None:
        self.min_frames = min_frames
        self._lost = 0
        self._expected = 0

    def period(self, lost: int, expected: int) -> float | None:
        """The lost share since the last period closed, given the counters
        now (``lost``: frames that did not arrive in time to play;
        ``expected``: frames played, lost or dropped to catch up; both since
        the buffer started); None while fewer than ``min_frames`` were due."""
        expected_now = expected - self._expected
        if expected_now < max(1, self.min_frames):
            return None
        lost_now = lost - self._lost
        self._lost, self._expected = lost, expected
        return min(1.0, max(0.0, lost_now / expected_now))


class LossReportGate:
    """The listener's side, per speaker: whether a period's loss share is
    worth a report, so that a room of N people does not send N x (N-1)
    requests every period whatever happens.

    :class:`FecPolicy` rises at once and falls with a half-life of seconds,
    and forgets a listener not heard from for ``stale_s``: so a share that
    rose by ``rise`` or more goes out at once, one that fell to half the
    last sent (and by ``rise`` at least) too, and otherwise the last figure
    is repeated only every ``refresh_s`` (below the policy's ``stale_s``).
    On a clean link that is one report per ``refresh_s`` instead of one per
    period."""

    def __init__(self, rise: float = 0.01, refresh_s: float = 10.0) -> None:
        if not 0.0 < rise <= 1.0 or refresh_s <= 0.0:
            raise ValueError("need 0 < rise <= 1 and refresh_s > 0")
        self.rise = rise
        self.refresh_s = refresh_s
        self.held = 0
        """Periods whose share was not worth a report."""
        self._sent: float | None = None
        self._sent_at_s = 0.0

    def due(self, share: float, now: float) -> bool:
        """Whether to report ``share`` (0..1) at ``now`` (seconds); a True
        counts as sent."""
        last = self._sent
        if (
            last is None
            or share >= last + self.rise
            or share <= last - max(self.rise, last / 2.0)
            or now - self._sent_at_s >= self.refresh_s
        ):
            self._sent, self._sent_at_s = share, now
            return True
        self.held += 1
        return False
