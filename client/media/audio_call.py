"""The audio half of a :class:`~client.media.call.Call`.

It sends the local microphone track (at most one), receives every remote
``opus`` track into the shared :class:`AudioPlayout` that the sink pulls,
answers the host's "ask to mute" by muting and telling the room, and tells
listeners what the user should see: :class:`MuteAsked` and
:class:`~codec.media.audio.ActiveSpeakerChanged` (from the RFC 6464 levels in
the datagrams, without decoding).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from codec.media import AudioPacket
from codec.media.audio import ActiveSpeaker, ActiveSpeakerChanged
from codec.messages import AudioLossReported, RoomState, RoomTrack

from ..errors import ClientError
from ..listeners import Listeners
from ..rooms import RoomEvent, Rooms
from .audio_host import AudioHost, RemoteReceiver
from .audio_loss import LossFeedback
from .audio_processing import EchoCanceller
from .audio_receiver import AudioPlayout, AudioReceiver
from .audio_sender import AudioSender, CaptureProcessor
from .audio_sinks import AudioSink
from .audio_sources import AudioSource, MicSource
from .errors import AudioUnavailable, SinkError
from .lip_sync import LipSync, MediaClock

__all__ = ["AudioCall", "AudioEvent", "MuteAsked", "SpeakingChanged"]

log = logging.getLogger("quicmeet.media")

_SPEAKER_TICK_S = 0.25


@dataclass(frozen=True, slots=True)
class MuteAsked:
    """The host ``by`` asked us to mute; the microphone is now muted (the
    user may unmute with :meth:`AudioCall.set_muted`)."""

    by: str


@dataclass(frozen=True, slots=True)
class SpeakingChanged:
    """``user`` started or stopped speaking (their packets' V bit, held for
    :data:`SPEAKING_HOLD_S` so the indicator does not flicker between words)."""

    user: str
    speaking: bool


SPEAKING_HOLD_S = 0.4

AudioEvent = MuteAsked | ActiveSpeakerChanged | SpeakingChanged
AudioListener = Callable[[AudioEvent], None]


class AudioCall:
    """Local audio out, remote audio in, mute and the active speaker."""

    def __init__(
        self,
        rooms: Rooms,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[Sequence[bytes]], bool],
        sink: AudioSink | None,
    ) -> None:
        self.rooms = rooms
        self.sink = sink
        self.playout = AudioPlayout()
        self.active = ActiveSpeaker()
        self.sender: AudioSender | None = None
        self.receivers: dict[int, AudioReceiver | RemoteReceiver] = {}
        self.ended: list[AudioReceiver | RemoteReceiver] = []
        self.unknown_track = 0
        self.unavailable: str | None = None
        """Why playback or capture is off, if it is."""
        self._loop = loop
        self._send = send
        self._listeners: Listeners[AudioEvent] = Listeners(log, "audio event")
        self._last_voice_s: dict[str, float] = {}
        self._push_to_talk = False
        self._ticker: asyncio.TimerHandle | None = None
        self.clock = MediaClock()
        """The capture clock our audio and video tracks share (lip sync)."""
        self._lip_syncs: dict[str, LipSync] = {}
        self.loss = LossFeedback(rooms, loop)
        """Loss reports to the speakers, and our FEC from the listeners'."""
        self._unlisten: Callable[[], None] | None = None
        self.host: AudioHost | None = None
        """The audio process that plays and captures, when there is one
        (:meth:`use_host`); else the sink pulls :attr:`playout` here."""

    def add_listener(self, listener: AudioListener) -> Callable[[], None]:
        """Call ``listener`` (on the loop) for each audio event; returns a
        function that removes it (calling that again does nothing)."""
        return self._listeners.add(listener)

    def start(self) -> None:
        """Start the sink's playout clock (if there is a sink). A sink that
        cannot start turns playback off (:attr:`unavailable` says why)."""
        if self.sink is not None:
            try:
                self.sink.start(self.playout.pull)
                self.playout.output_delay_s = self.sink.output_delay_s
            except (AudioUnavailable, SinkError) as exc:
                self.unavailable = str(exc)
                log.warning("%s", exc)
                self.sink = None
        self._ticker = self._loop.call_later(_SPEAKER_TICK_S, self._tick)
        self._unlisten = self.rooms.add_listener(self._on_room_event)

    def use_host(self, host: AudioHost) -> None:
        """Play every speaker in ``host``'s audio process from now on (the
        desktop app's engine: its devices' callbacks never wait for the
        engine's GIL). The local sink, if any, stops being fed."""
        self.host = host
        for track_id, receiver in list(self.receivers.items()):
            self.playout.remove(track_id)
            self.receivers[track_id] = host.add_track(
                receiver.track, self.lip_sync(receiver.track.owner)
            )

    async def publish(
        self, source: AudioSource, processor: CaptureProcessor | None = None
    ) -> AudioSender:
        """Open ``source`` and send it as the microphone track.

        A microphone gets the capture chain (echo cancellation against what
        the sink plays, noise suppression, gain) unless ``processor`` says
        otherwise; test sources (tone, WAV, silence) go out as they are.
        """
        if self.sender is not None:
            raise ClientError("a microphone track is already published")
        if processor is None and isinstance(source, MicSource):
            try:
                processor = EchoCanceller()
            except AudioUnavailable as exc:
                self.unavailable = str(exc)
                log.warning("%s", exc)
        if isinstance(processor, EchoCanceller):
            self.playout.on_played = processor.on_played
        sender = AudioSender(
            source, self._send, self._loop, processor=processor, clock=self.clock
        )
        sender.muted = self._push_to_talk
        await sender.publish(lambda: self.rooms.publish("microphone"))
        self.sender = sender
        return sender

    async def switch_source(self, source: AudioSource) -> None:
        """Send from ``source`` from now on, on the same track (a device
        change during the meeting). The old source goes on if the new one
        cannot be opened (its error is raised)."""
        if self.sender is None:
            raise ClientError("no microphone track is published")
        await self.sender.switch_source(source)

    async def switch_sink(self, sink: AudioSink | None) -> None:
        """Play on ``sink`` from now on (``None``: nowhere). When the new sink
        cannot start, playback is off, :attr:`unavailable` says why and the
        error is raised. Devices open and close in an executor (PortAudio
        may take a moment), never on the loop."""
        old, self.sink = self.sink, None
        if old is not None:
            await self._loop.run_in_executor(None, old.stop)
        if sink is not None:
            try:
                await self._loop.run_in_executor(None, sink.start, self.playout.pull)
            except (AudioUnavailable, SinkError) as exc:
                self.unavailable = str(exc)
                raise
            self.sink = sink
            self.playout.output_delay_s = sink.output_delay_s
            self.unavailable = None

    async def unpublish(self) -> None:
        """Stop sending audio and tell the room."""
        sender, self.sender = self.sender, None
        if sender is None:
            return
        await sender.withdraw(self.rooms)

    async def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone and tell the room."""
        if self.sender is not None:
            self.sender.muted = muted
        await self.rooms.set_muted(muted)

    def set_push_to_talk(self, enabled: bool) -> None:
        """Push-to-talk: while enabled the microphone sends only between
        :meth:`press_to_talk` and :meth:`release_to_talk`."""
        self._push_to_talk = enabled
        if self.sender is not None:
            self.sender.muted = enabled

    def press_to_talk(self) -> None:
        """The talk key went down (push-to-talk only)."""
        if self._push_to_talk and self.sender is not None:
            self.sender.muted = False

    def release_to_talk(self) -> None:
        """The talk key went up (push-to-talk only)."""
        if self._push_to_talk and self.sender is not None:
            self.sender.muted = True

    @property
    def speaking(self) -> set[str]:
        """Who speaks now, by the V bits of their packets."""
        return set(self._last_voice_s)

    def lip_sync(self, user: str) -> LipSync:
        """``user``'s lip sync, shared by their audio and camera receivers."""
        sync = self._lip_syncs.get(user)
        if sync is None:
            sync = self._lip_syncs[user] = LipSync()
        return sync

    def set_volume(self, user: str, volume: float) -> None:
        """``user``'s volume for us: 0.0 to 2.0 (0-200 %)."""
        self.playout.mixer.set_volume(user, volume)
        self._tell_host(user)

    def set_speaker_muted(self, user: str, muted: bool) -> None:
        """Silence ``user`` for us only."""
        self.playout.mixer.set_muted(user, muted)
        self._tell_host(user)

    def _tell_host(self, user: str) -> None:
        mixer = self.playout.mixer
        if self.host is not None:
            self.host.set_volume(user, mixer.volume(user), mixer.is_muted(user))

    # -- from the Call --------------------------------------------------------------

    def on_mute_requested(self, by: str) -> None:
        if self.sender is not None:
            self.sender.muted = True
        self._listeners.notify(MuteAsked(by))

    def sync(self, state: RoomState, me: str | None) -> list[str]:
        """Follow the room's audio tracks; returns the kinds of our own tracks
        that the room no longer lists (to announce again)."""
        remote = {
            t.track_id: t for t in state.tracks if t.codec == "opus" and t.owner != me
        }
        for track_id in list(self.receivers):
            if track_id not in remote:
                self._drop(track_id)
        for track_id, track in remote.items():
            if track_id not in self.receivers:
                self.receivers[track_id] = self._receiver(track)
        self.loss.members_now(member.username for member in state.members)
        mine = {t.track_id for t in state.tracks if t.owner == me}
        sender = self.sender
        if sender is None or sender.track_id is None or sender.track_id in mine:
            return []  # none, still being announced, or listed
        return ["microphone"]

    def _receiver(self, track: RoomTrack) -> AudioReceiver | RemoteReceiver:
        sync = self.lip_sync(track.owner)
        if self.host is not None:
            return self.host.add_track(track, sync)
        receiver = AudioReceiver(track, sync)
        self.playout.add(receiver)
        return receiver

    def on_packet(self, packet: AudioPacket) -> None:
        receiver = self.receivers.get(packet.track_id)
        if receiver is None:
            self.unknown_track += 1
            return
        now = time.time()
        receiver.push(packet, now)
        user = receiver.track.owner
        event = self.active.update(user, packet.level, packet.voice_activity, now)
        if event is not None:
            self._listeners.notify(event)
        if packet.voice_activity:
            if user not in self._last_voice_s:
                self._listeners.notify(SpeakingChanged(user, True))
            self._last_voice_s[user] = now

    def left(self) -> None:
        for track_id in list(self.receivers):
            self._drop(track_id)
        if self.sender is not None:
            self.sender.stop()

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._unlisten is not None:
            self._unlisten()
        self.loss.close()
        sender = self.sender
        if sender is not None:
            await sender.halt()
        if self.sink is not None:
            await self._loop.run_in_executor(None, self.sink.stop)
        for track_id in list(self.receivers):
            self._drop(track_id)

    def _drop(self, track_id: int) -> None:
        receiver = self.receivers.pop(track_id)
        self.playout.remove(track_id)
        if self.host is not None:
            self.host.remove_track(track_id)
        if self._last_voice_s.pop(receiver.track.owner, None) is not None:
            self._listeners.notify(SpeakingChanged(receiver.track.owner, False))
        self.ended.append(receiver)
        event = self.active.forget(receiver.track.owner, time.time())
        if event is not None:
            self._listeners.notify(event)

    def _tick(self) -> None:
        now = time.time()
        event = self.active.tick(now)
        if event is not None:
            self._listeners.notify(event)
        for user, last in list(self._last_voice_s.items()):
            if now - last > SPEAKING_HOLD_S:
                del self._last_voice_s[user]
                self._listeners.notify(SpeakingChanged(user, False))
        monotonic = time.monotonic()
        self.loss.apply(self.sender, monotonic)
        self.loss.tick(self.receivers, monotonic)
        self._ticker = self._loop.call_later(_SPEAKER_TICK_S, self._tick)

    def _on_room_event(self, event: RoomEvent) -> None:
        if isinstance(event, AudioLossReported):
            self.loss.on_report(event, self.sender, time.monotonic())

    def stats(self) -> dict[str, object]:
        return {
            "audio_sent": None if self.sender is None else self.sender.stats_dict(),
            "audio_received": [
                r.stats_dict() for r in [*self.ended, *self.receivers.values()]
            ],
            "active_speaker": self.active.current,
            "audio_sink": None if self.sink is None else self.sink.report(),
            "audio_process": None if self.host is None else self.host.report(),
            "audio_unavailable": self.unavailable,
            "audio_loss_reports_sent": self.loss.reports_sent,
            "audio_loss_reports_held": self.loss.reports_held,
        }
