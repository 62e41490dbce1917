"""Receiving one remote video track: loss recovery, keyframe requests, decoding
and rendering, each where it belongs.

- On the event loop: fragments go into a
  :class:`~codec.media.recovery.FrameBuffer` and their sequence numbers into a
  :class:`~codec.media.recovery.NackGenerator` (both pure and cheap), whose
  deadlines run on loop timers. A gap is NACKed at once (the SFU answers from
  its cache), once more after a round trip, and the frame waits for it until
  its deadline (the round trip plus a margin, capped). Only a frame that
  retransmission could not complete in time, or a decoder that needs a
  keyframe, makes the receiver ask the publisher for one: at once, then again
  only when none has come within ``keyframe_retry_s`` (at least two round
  trips), so one loss costs one keyframe.
- Each whole frame is given its playout time by a
  :class:`~codec.media.recovery.PlayoutDelay`: its capture time plus one delay
  for all frames that covers the recent repairs (capped), so a frame a
  retransmission completed is shown on time and the cadence stays even.
- On a decode thread: whole frames are decoded (``VideoDecoder`` discards
  everything until a keyframe, so no smeared picture is ever produced); each
  picture is held until its playout time, then replaces the previous one in a
  :class:`NewestFrame` slot.
- On a render thread: the newest picture is taken when the renderer is ready,
  its stamp read (latency, order) and handed to the sinks. A slow sink makes
  frames be skipped, never queued. With lip sync (a camera whose owner's
  audio plays here), a picture waits until its audio plays: pictures taken
  meanwhile wait in order behind it, and of those due together only the
  newest is shown.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from codec.media import (
    CompletedFrame,
    FramesLost,
    ReassemblyEvent,
    Unwrapper,
    VideoPacket,
)
from codec.media.recovery import (
    NACK_COPY_DELAY_S,
    Arrival,
    FrameBuffer,
    NackGenerator,
    PlayoutDelay,
)
from codec.media.stamp import read_stamp
from codec.media.video import VideoDecoder
from codec.messages import RoomTrack

from .frames import DecodedFrame, NewestFrame
from .freeze_log import FrameTrace, FreezeLog, RepairTracker
from .lip_sync import LipSync
from .receiver_stats import ReceiverStats, percentile
from .sources import wall_clock_ms

__all__ = ["FrameConsumer", "ReceiverStats", "VideoReceiver", "percentile"]

log = logging.getLogger("quicmeet.media")

FrameConsumer = Callable[[RoomTrack, DecodedFrame], None]
"""Called on the render thread with each picture rendered (a sink)."""

_LOST = object()


class _Scheduled(NamedTuple):
    """A whole frame for the decode thread, and when to show it
    (``time.monotonic()``)."""

    frame: CompletedFrame
    show_at: float
    trace: FrameTrace


_LATE_TIMER_S = 0.05
"""A timer this late (seconds) means the event loop was stalled."""
_STALL_GRACE_S = 0.02


class VideoReceiver:
    """Turns one remote track's datagrams into rendered pictures.

    ``request_keyframe(track_id)`` sends a keyframe request datagram and
    ``send_nack(track_id, seqs)`` a NACK (both on the loop); ``rtt_s()`` gives
    the connection's round trip in seconds (or None), which sets how long a
    frame waits for retransmissions. ``consumers`` get every rendered picture
    on the render thread. Call :meth:`start`, feed :meth:`push` on the loop,
    then :meth:`stop`.
    """

    def __init__(
        self,
        track: RoomTrack,
        loop: asyncio.AbstractEventLoop,
        request_keyframe: Callable[[int], None],
        consumers: list[FrameConsumer] | None = None,
        *,
        send_nack: Callable[[int, list[int]], None] | None = None,
        rtt_s: Callable[[], float | None] | None = None,
        keyframe_retry_s: float = 0.3,
        max_decode_queue: int = 60,
        lip_sync: LipSync | None = None,
    ) -> None:
        self.track = track
        self.lip_sync = lip_sync
        self.stats = ReceiverStats()
        self.slot = NewestFrame()
        self.keyframe_retry_s = keyframe_retry_s
        self.max_decode_queue = max_decode_queue
        self._loop = loop
        self._send_keyframe_request = request_keyframe
        self._consumers = list(consumers or [])
        self._send_nack = send_nack
        self._rtt_s = rtt_s
        self._rtt_read_at = float("-inf")
        self._buffer = FrameBuffer()
        self._nack = NackGenerator(
            give_up_s=self._buffer.wait_s, copy_delay_s=NACK_COPY_DELAY_S
        )
        self._playout = PlayoutDelay()
        self._nack_timer: asyncio.TimerHandle | None = None
        self._nack_at: float | None = None
        self._freeze_gap_s = max(3.0 / track.fps, 0.15) if track.fps > 0 else 0.15
        self._frame_interval_s = 1.0 / track.fps if track.fps > 0 else 0.05
        self._last_render: float | None = None
        self._last_rendered_number: int | None = None
        self._repairs = RepairTracker()
        self.freeze_log = FreezeLog(self._frame_interval_s)
        """One record per freeze: what ended it (see :mod:`.freeze_log`)."""
        self._skipped_since_frame = 0
        self._timer_late_s = 0.0
        self._seq = Unwrapper(16)
        self._lowest_seq: int | None = None
        self._highest_seq = 0
        self._expire_timer: asyncio.TimerHandle | None = None
        self._expire_at: float | None = None
        self._graced_deadline: float | None = None
        self._retry_timer: asyncio.TimerHandle | None = None
        self._needs_keyframe = True
        self._last_request_at = float("-inf")
        self._decode_queue: queue.Queue[object] = queue.Queue()
        self._stopping = threading.Event()
        self._last_stamp_frame: int | None = None
        self._threads = [
            threading.Thread(
                target=self._decode_loop, name="video-decode", daemon=True
            ),
            threading.Thread(
                target=self._render_loop, name="video-render", daemon=True
            ),
        ]

    @property
    def track_id(self) -> int:
        return self.track.track_id

    def start(self) -> None:
        """Start the threads and ask for the keyframe that starts decoding."""
        for thread in self._threads:
            thread.start()
        self._ask_for_keyframe()

    def stop(self) -> None:
        """Stop the timers and tell the threads to end (returns at once, on the
        loop; :meth:`join` waits for the threads)."""
        self._stopping.set()
        for timer in (self._expire_timer, self._retry_timer, self._nack_timer):
            if timer is not None:
                timer.cancel()
        self._decode_queue.put(None)
        self.slot.close()

    def join(self, timeout: float = 2.0) -> None:
        """Wait up to ``timeout`` s for the threads to end (blocking: run it in
        an executor from the loop)."""
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    # -- event loop: packets, reassembly, keyframe requests ----------------------

    def push(self, packet: VideoPacket, now: float) -> None:
        """Take one fragment of this track (``now`` is the loop's time)."""
        stats = self.stats
        stats.packets_received += 1
        stats.bytes_received += len(packet.payload)
        if stats.first_packet_at is None:
            stats.first_packet_at = now
        stats.last_packet_at = now
        seq = self._seq.unwrap(packet.seq)
        if self._lowest_seq is None or seq < self._lowest_seq:
            self._lowest_seq = seq
        self._highest_seq = max(self._highest_seq, seq)
        self._follow_rtt(now)
        if self._nack.on_packet(packet.seq, now) is Arrival.FILLED:
            recovery = self._nack.last_recovery
            assert recovery is not None
            self._repairs.on_recovered(packet.frame_number, recovery)
        self._handle(self._buffer.push(packet, now), now)
        self._send_nacks(now)

    def _follow_rtt(self, now: float) -> None:
        if self._rtt_s is None or now - self._rtt_read_at < 0.5:
            return
        self._rtt_read_at = now
        rtt = self._rtt_s()
        if rtt is not None:
            self._buffer.set_rtt(rtt)
            self._nack.set_rtt(rtt)
            self._nack.set_give_up(self._buffer.wait_s)
            # A repair on this hop: a round trip, after the frame interval in
            # which a frame's last packet lost does not show yet.
            playout = self._playout
            playout.set_initial_delay(
                rtt + self._frame_interval_s - playout.tolerance_s
            )

    def _send_nacks(self, now: float) -> None:
        if self._send_nack is None or self._stopping.is_set():
            return
        due = self._nack.due(now)
        if due:
            self.stats.nacks_sent += 1
            self._send_nack(self.track.track_id, due)
        deadline = self._nack.next_deadline()
        if deadline is None or deadline == self._nack_at:
            return
        if self._nack_timer is not None:
            self._nack_timer.cancel()
        self._nack_at = deadline
        self._nack_timer = self._loop.call_at(deadline, self._nack_due)

    def _nack_due(self) -> None:
        now = self._loop.time()
        if self._nack_at is not None:
            self._timer_late_s = max(self._timer_late_s, now - self._nack_at)
        self._nack_timer = None
        self._nack_at = None
        self._send_nacks(now)

    def _expire(self) -> None:
        now = self._loop.time()
        if self._expire_at is not None:
            self._timer_late_s = max(self._timer_late_s, now - self._expire_at)
        self._expire_timer = None
        self._expire_at = None
        deadline = self._buffer.next_deadline()
        if (
            deadline is not None
            and now - deadline > _LATE_TIMER_S
            and deadline != self._graced_deadline
        ):
            # The loop was stalled: datagrams that came meanwhile are not read
            # yet. Give them one turn (once per deadline) before giving up.
            self._graced_deadline = deadline
            self._expire_at = now + _STALL_GRACE_S
            self._expire_timer = self._loop.call_at(self._expire_at, self._expire)
            return
        self._handle(self._buffer.expire(now), now)

    def _handle(self, events: list[ReassemblyEvent], now: float) -> None:
        stats = self.stats
        for event in events:
            if isinstance(event, CompletedFrame):
                stats.frames_received += 1
                layer = event.layer >> 4
                if layer != stats.layer:
                    if stats.layer is not None:
                        stats.layer_switches += 1
                    stats.layer_timeline.append((time.time(), layer))
                stats.layer = layer
                if event.keyframe:
                    stats.keyframes_received += 1
                    # The decoder will say whether it took; do not re-ask meanwhile.
                    self._last_request_at = now
                playout = self._playout
                playout.on_frame(event.timestamp, now)
                # The decode thread's clock is time.monotonic(), the loop's may
                # not be: hand it the time left, not the loop's instant.
                show_in = playout.render_time(event.timestamp) - now
                trace = FrameTrace(
                    repair=self._repairs.take(event.frame_number),
                    buffered_s=now - event.first_arrival,
                    lateness_s=playout.delay_s - show_in,
                    playout_delay_s=playout.delay_s,
                    skipped_before=self._skipped_since_frame,
                    timer_late_s=self._timer_late_s,
                    rtt_s=self._nack.rtt_s,
                )
                self._skipped_since_frame = 0
                self._timer_late_s = 0.0
                self._enqueue(_Scheduled(event, time.monotonic() + show_in, trace))
            elif isinstance(event, FramesLost):
                stats.frames_lost += event.count
                self._skipped_since_frame += event.count
                self._enqueue(_LOST)
                self._needs_keyframe = True
                self._ask_for_keyframe()
        self._arm_expiry()

    def _enqueue(self, item: object) -> None:
        if self._decode_queue.qsize() >= self.max_decode_queue:
            # Decoding fell far behind: start again from the next keyframe.
            self.stats.decode_queue_overflows += 1
            while True:
                try:
                    self._decode_queue.get_nowait()
                except queue.Empty:
                    break
            self._decode_queue.put(_LOST)
            self._needs_keyframe = True
            self._ask_for_keyframe()
            if item is _LOST:
                return
        self._decode_queue.put(item)

    def _arm_expiry(self) -> None:
        deadline = self._buffer.next_deadline()
        if deadline is None or deadline == self._expire_at:
            return
        if deadline == self._graced_deadline and self._expire_timer is not None:
            return  # its grace turn is already scheduled
        if self._expire_timer is not None:
            self._expire_timer.cancel()
        self._expire_at = deadline
        self._expire_timer = self._loop.call_at(deadline, self._expire)

    def _decoder_state(self, needs_keyframe: bool) -> None:
        self._needs_keyframe = needs_keyframe
        if needs_keyframe:
            self._ask_for_keyframe()

    def _ask_for_keyframe(self) -> None:
        if not self._needs_keyframe or self._stopping.is_set():
            return
        now = self._loop.time()
        # A keyframe takes a round trip and its own sending time to come: ask
        # again only when it is surely lost, never for the same loss twice.
        retry = max(self.keyframe_retry_s, 2 * self._nack.rtt_s + 0.1)
        wait = self._last_request_at + retry - now
        if wait <= 0:
            self._last_request_at = now
            self.stats.keyframe_requests += 1
            if self.stats.frames_decoded == 0:
                self.stats.keyframe_requests_to_start += 1
            self._send_keyframe_request(self.track.track_id)
            wait = retry
        if self._retry_timer is None:
            self._retry_timer = self._loop.call_later(wait, self._retry)

    def _retry(self) -> None:
        self._retry_timer = None
        self._ask_for_keyframe()

    # -- decode thread ----------------------------------------------------------

    def _decode_loop(self) -> None:
        decoder = VideoDecoder()
        needs_keyframe = True
        stats = self.stats
        hidden_at_last_picture = 0
        while True:
            item = self._decode_queue.get()
            if item is None:
                return
            if item is _LOST:
                decoder.frame_lost()
            else:
                assert isinstance(item, _Scheduled)
                frame = item.frame
                for image in decoder.decode(frame.data):
                    stats.frames_decoded += 1
                    hidden = decoder.frames_hidden - hidden_at_last_picture
                    hidden_at_last_picture = decoder.frames_hidden
                    decoded_at = time.monotonic()
                    if self._stopping.wait(item.show_at - decoded_at):
                        return
                    self.slot.put(
                        DecodedFrame(
                            image=image,
                            frame_number=frame.frame_number,
                            timestamp=frame.timestamp,
                            keyframe=frame.keyframe,
                            decoded_at=decoded_at,
                            late_s=time.monotonic() - item.show_at,
                            trace=item.trace._replace(hidden_before=hidden),
                        )
                    )
                stats.frames_discarded = decoder.frames_discarded
                stats.frames_hidden = decoder.frames_hidden
                stats.refresh_recoveries = decoder.refresh_recoveries
            if decoder.needs_keyframe != needs_keyframe:
                needs_keyframe = decoder.needs_keyframe
                self._loop.call_soon_threadsafe(self._decoder_state, needs_keyframe)

    # -- render thread ------------------------------------------------------------

    def _render_loop(self) -> None:
        sync = self.lip_sync
        held: deque[tuple[float, DecodedFrame]] = deque()
        while not self._stopping.is_set():
            wait = 0.5 if not held else max(0.0, held[0][0] - time.monotonic())
            frame = self.slot.take(timeout=wait)
            if frame is not None:
                if sync is None:
                    self._render(frame)
                    continue
                delay = sync.render_in_s(frame.timestamp)
                held.append((time.monotonic() + delay, frame))
            due = None
            while held and held[0][0] <= time.monotonic():
                due = held.popleft()[1]
            if due is not None:
                self._render(due)
                assert sync is not None
                sync.rendered(due.timestamp)

    def _render(self, frame: DecodedFrame) -> None:
        stats = self.stats
        now = time.monotonic()
        if stats.first_render_at is None:
            stats.first_render_at = now
        stats.last_render_at = now
        stats.frames_rendered += 1
        if self._last_render is not None:
            gap = now - self._last_render
            if gap > self._freeze_gap_s:
                stats.freezes += 1
                stats.time_frozen_s += gap
                if frame.late_s > self._frame_interval_s:
                    # Ready after its turn: a repair longer than the playout
                    # delay covers, or decoding fell behind.
                    stats.freezes_late_frame += 1
                assert stats.first_render_at is not None
                self.freeze_log.record(
                    at_s=now - stats.first_render_at,
                    gap_s=gap,
                    frame_number=frame.frame_number,
                    frames_between=frame.frame_number
                    - (self._last_rendered_number or 0)
                    - 1,
                    late_s=frame.late_s,
                    trace=frame.trace,
                )
        self._last_render = now
        self._last_rendered_number = frame.frame_number
        stats.height, stats.width = frame.image.shape[:2]
        stamp = read_stamp(frame.image)
        latency: float | None = None
        if stamp is None:
            stats.stamps_unreadable += 1
        else:
            number, capture_ms = stamp
            stats.stamps_read += 1
            if self._last_stamp_frame is not None and number <= self._last_stamp_frame:
                stats.stamp_order_errors += 1
            self._last_stamp_frame = number
            age = (wall_clock_ms() - capture_ms) & 0xFFFFFFFF
            if age < 0x80000000:
                latency = float(age)
                stats.latencies_ms.append(latency)
        stats.timeline.append((time.time(), latency))
        for consumer in list(self._consumers):
            try:
                consumer(self.track, frame)
            except Exception:
                log.exception("a video sink failed; it is closed")
                self._consumers.remove(consumer)

    # -- reporting ----------------------------------------------------------------

    @property
    def packets_lost(self) -> int:
        """Packets of the track's sequence that never arrived (so far)."""
        received = self.stats.packets_received - self._buffer.stats.duplicate_packets
        if self._lowest_seq is None:
            return 0
        return max(0, self._highest_seq - self._lowest_seq + 1 - received)

    def stats_dict(self) -> dict[str, object]:
        """The counters as plain values, with rates and percentiles."""
        stats = self.stats
        nack = self._nack.stats
        packet_span = (stats.last_packet_at or 0.0) - (stats.first_packet_at or 0.0)
        render_span = (stats.last_render_at or 0.0) - (stats.first_render_at or 0.0)
        latencies = list(stats.latencies_ms)
        result: dict[str, object] = {
            "track_id": self.track.track_id,
            "user": self.track.owner,
            "kind": self.track.kind,
            "width": stats.width,
            "height": stats.height,
            "packets_received": stats.packets_received,
            "packets_lost": self.packets_lost,
            "bytes_received": stats.bytes_received,
            "bitrate_bps": (
                round(stats.bytes_received * 8 / packet_span) if packet_span > 0 else 0
            ),
            "frames_received": stats.frames_received,
            "frames_lost": stats.frames_lost,
            "tails_skipped": self._buffer.stats.tails_skipped,
            "keyframes_received": stats.keyframes_received,
            "layer": stats.layer,
            "layer_switches": stats.layer_switches,
            "layer_timeline": [
                [round(t, 3), layer] for t, layer in stats.layer_timeline
            ],
            "keyframe_requests": stats.keyframe_requests,
            "keyframe_requests_to_start": stats.keyframe_requests_to_start,
            "nacks_sent": stats.nacks_sent,
            "packets_requested": nack.packets_requested,
            "packets_recovered": nack.packets_recovered,
            "packets_given_up": nack.packets_given_up,
            "given_up_unasked": nack.given_up_unasked,
            "given_up_after_retry": nack.given_up_after_retry,
            "frame_wait_ms": round(self._buffer.wait_s * 1000),
            "playout_delay_ms": round(self._playout.delay_s * 1000),
            "frames_decoded": stats.frames_decoded,
            "frames_discarded": stats.frames_discarded,
            "frames_hidden": stats.frames_hidden,
            "refresh_recoveries": stats.refresh_recoveries,
            "frames_rendered": stats.frames_rendered,
            "frames_skipped": self.slot.replaced,
            "fps": (
                round((stats.frames_rendered - 1) / render_span, 2)
                if render_span > 0
                else 0.0
            ),
            "stamps_read": stats.stamps_read,
            "stamps_unreadable": stats.stamps_unreadable,
            "stamp_order_errors": stats.stamp_order_errors,
            "freezes": stats.freezes,
            "freezes_late_frame": stats.freezes_late_frame,
            "time_frozen_s": round(stats.time_frozen_s, 3),
            # A copy first: the render thread appends while the loop reports
            # (iterating the deque itself raised "mutated during iteration").
            "timeline": [[round(t, 3), lat] for t, lat in list(stats.timeline)],
            "freeze_log": list(self.freeze_log.records),
        }
        if self.lip_sync is not None:
            result["av_offset_ms"] = self.lip_sync.stats_dict()
        if latencies:
            result["latency_ms"] = {
                "p50": percentile(latencies, 50),
                "p95": percentile(latencies, 95),
                "p99": percentile(latencies, 99),
                "samples": len(latencies),
            }
        return result
