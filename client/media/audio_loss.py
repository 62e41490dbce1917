"""Audio loss feedback of one call, both ways: as a listener, tell each
speaker what we lost of their microphone track; as a talker, size our Opus
encoder's in-band FEC (and bitrate) from the worst listener's reports.

Reports are control messages (``ReportAudioLoss`` up, the server relays
``AudioLossReported`` to the track's publisher only; ``docs/protocol.md``):
at most one per speaker every :data:`LOSS_REPORT_EVERY_S` while they talk,
and only when the loss changed or the last report is getting old
(:class:`~codec.media.audio.LossReportGate`). The policy itself is pure
(:class:`~codec.media.audio.FecPolicy`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Protocol

from codec.media.audio import FecPolicy, FecSetting, LossCounter, LossReportGate
from codec.messages import AudioLossReported

from ..errors import ClientError
from ..rooms import Rooms
from .audio_sender import AudioSender

__all__ = ["LOSS_REPORT_EVERY_S", "LossFeedback"]

log = logging.getLogger("quicmeet.media")

LOSS_REPORT_EVERY_S = 2.0
"""How often we tell each speaker what we lost of their audio (when they
talked enough since the last report: :class:`LossCounter`)."""


class _Counted(Protocol):
    def stats_dict(self) -> dict[str, object]:
        """The receiver's counters (``packets_lost``, ``frames_played``,
        ``frames_accelerated``)."""


class LossFeedback:
    """Both halves of the feedback for one call; the call ticks it."""

    def __init__(self, rooms: Rooms, loop: asyncio.AbstractEventLoop) -> None:
        self.rooms = rooms
        self.policy = FecPolicy()
        """Our encoder's FEC from the listeners' reports."""
        self.reports_sent = 0
        self.reports_held = 0
        """Periods whose loss was not worth a report (unchanged)."""
        self._loop = loop
        self._applied: FecSetting | None = None
        self._counters: dict[int, LossCounter] = {}
        self._gates: dict[int, LossReportGate] = {}
        self._next_report_s: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the talker's side ----------------------------------------------------------

    def on_report(
        self, event: AudioLossReported, sender: AudioSender | None, now: float
    ) -> None:
        """A listener's report about our track arrived at ``now`` (seconds,
        monotonic)."""
        if sender is not None and event.track_id == sender.track_id:
            self.policy.report(event.by, event.lost_fraction, now)
            self.apply(sender, now)

    def apply(self, sender: AudioSender | None, now: float) -> None:
        """Set ``sender``'s FEC and bitrate, once a listener has reported
        (until then the encoder keeps its start values)."""
        if sender is None or not self.policy.listeners:
            return
        setting = self.policy.setting(now)
        if setting != self._applied:
            sender.set_expected_loss(setting.expected_loss_pct)
            sender.set_bitrate(setting.bitrate_bps)
            self._applied = setting

    def members_now(self, members: Iterable[str]) -> None:
        """The room's members changed: who left no longer counts."""
        for listener in self.policy.listeners - set(members):
            self.policy.forget(listener)

    # -- the listener's side --------------------------------------------------------

    def tick(self, receivers: Mapping[int, _Counted], now: float) -> None:
        """Report what we lost of each speaker, every
        :data:`LOSS_REPORT_EVERY_S` (``now``: seconds, monotonic)."""
        if self._next_report_s is not None and now < self._next_report_s:
            return
        self._next_report_s = now + LOSS_REPORT_EVERY_S
        for track_id in list(self._counters):
            if track_id not in receivers:
                del self._counters[track_id]
                self._gates.pop(track_id, None)
        for track_id, receiver in receivers.items():
            values = receiver.stats_dict()
            lost = values.get("packets_lost")
            played = values.get("frames_played")
            dropped = values.get("frames_accelerated")
            if not (
                isinstance(lost, int)
                and isinstance(played, int)
                and isinstance(dropped, int)
            ):
                continue  # the audio process has not counted this track yet
            counter = self._counters.setdefault(track_id, LossCounter())
            share = counter.period(lost, lost + played + dropped)
            if share is None:
                continue
            if not self._gates.setdefault(track_id, LossReportGate()).due(share, now):
                self.reports_held += 1
            else:
                task = self._loop.create_task(self._report(track_id, share))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _report(self, track_id: int, share: float) -> None:
        try:
            await self.rooms.report_audio_loss(track_id, share)
            self.reports_sent += 1
        except (ClientError, ConnectionError) as exc:
            # The speaker left, or we are reconnecting: the next report will do.
            log.debug("audio loss report for track %d: %s", track_id, exc)

    def close(self) -> None:
        """Cancel the reports still under way."""
        for task in list(self._tasks):
            task.cancel()
