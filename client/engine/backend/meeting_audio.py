"""The meeting's sound in the engine, on the loop thread: the speaker the
settings name, the microphone button, each person's volume and mute for us,
and who speaks.

The devices run in an audio process of the meeting's own
(:class:`~client.media.audio_host.AudioHost`: PortAudio's callbacks, the
jitter buffers, the mix and the capture chain), so they never wait for the
engine's GIL, nor the engine for them; the engine hands it every audio
datagram and sends what it captures. The window only sends commands and shows
:class:`~client.engine.audio_model.AudioActivity` and the meeting's
``microphone_on`` and ``audio_problem``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ...errors import ClientError
from ..audio_model import TEST_TONE, AudioActivity
from ..model import Notice, UiEvent

if TYPE_CHECKING:
    from ...media import Call
    from ...media.audio_call import AudioEvent
    from ...media.audio_host import AudioHost
    from ...media.audio_sender import AudioSender
    from ...media.audio_sources import AudioSource

__all__ = ["AudioSettings", "MeetingAudio"]

log = logging.getLogger("quicmeet.engine.audio")

MAX_VOLUME_PERCENT = 200


@dataclass(frozen=True, slots=True)
class AudioSettings:
    """The devices of a meeting: ``microphone`` and ``speaker`` are device
    names (``""``: the default device; ``none``: no sound that way), and
    the microphone may be :data:`~client.engine.audio_model.TEST_TONE`."""

    microphone: str = ""
    speaker: str = ""
    buffer_s: float | None = None
    """The devices' buffer (None: the client's default, 100 ms)."""


class MeetingAudio:
    """Sound of the meeting we are in. :meth:`attach` it to each new call,
    :meth:`detach` at the end; ``changed()`` is called when what the meeting
    window shows of it changed (the microphone, a problem)."""

    def __init__(
        self,
        post: Callable[[UiEvent], None],
        settings: Callable[[], AudioSettings],
        changed: Callable[[], None],
    ) -> None:
        self._post = post
        self._settings = settings
        self._changed = changed
        self._call: Call | None = None
        self._host: AudioHost | None = None
        self._unlisten: Callable[[], None] = lambda: None
        self._volumes: dict[str, int] = {}
        self._silenced: set[str] = set()
        self._in_use = AudioSettings()
        self._speaking: set[str] = set()
        self._active: str | None = None
        self._talking = False
        self.problem = ""
        """Why sound is off, for the meeting window (empty when it is on)."""

    @property
    def microphone_on(self) -> bool:
        """Whether our microphone is being sent (published and not muted)."""
        call = self._call
        sender = call.audio.sender if call is not None else None
        return sender is not None and not sender.muted

    async def attach(self, call: Call) -> None:
        """Play the meeting on the speaker the settings name (a speaker that
        cannot open leaves sound off, with :attr:`problem` saying why)."""
        from ...media.audio_host import AudioHost

        self._call = call
        self._unlisten = call.audio.add_listener(self._on_audio_event)
        loop = asyncio.get_running_loop()
        host = AudioHost(lambda text: loop.call_soon_threadsafe(self._host_said, text))
        await loop.run_in_executor(None, host.start)
        self._host = host
        call.audio.use_host(host)
        for user, percent in self._volumes.items():
            call.audio.set_volume(user, percent / 100.0)
        for user in self._silenced:
            call.audio.set_speaker_muted(user, True)
        await self._open_speaker(self._settings().speaker)

    async def detach(self) -> None:
        """The call ended: forget it (the call closes its own devices)."""
        self._unlisten()
        self._unlisten = lambda: None
        self._call = None
        host, self._host = self._host, None
        if host is not None:
            # The microphone track, if any, ends with "the audio process
            # stopped"; the call closes it next.
            await asyncio.get_running_loop().run_in_executor(None, host.stop)
        self.problem = ""
        self._speaking.clear()
        self._active = None

    async def apply_settings(self) -> None:
        """Switch to the devices the settings name now (during a meeting)."""
        call = self._call
        if call is None:
            return
        settings = self._settings()
        if settings.speaker != self._in_use.speaker:
            await self._open_speaker(settings.speaker)
        if settings.microphone != self._in_use.microphone and call.audio.sender:
            source = self._source(settings.microphone, settings.buffer_s)
            try:
                await call.audio.switch_source(source)
            except Exception as exc:  # the device's error, for people
                self._set_problem(f"the microphone did not change: {exc}")
                return
            self._in_use = AudioSettings(settings.microphone, self._in_use.speaker)
        self._changed()

    async def set_microphone(self, on: bool) -> None:
        """Send our microphone (the device the settings name), or mute it.
        The first time it is turned on the track is published; muting keeps
        the track and tells the room."""
        call = self._call
        if call is None:
            raise ClientError("not in a meeting")
        if on and call.audio.sender is None:
            await self._publish(call)
        if call.audio.sender is not None:
            await call.audio.set_muted(not on)
        self._talking = False
        self._changed()

    async def push_to_talk(self, pressed: bool) -> None:
        """Send the microphone while the talk key is held, though the Mic
        button is off (for us only: the room still shows us muted). The
        first press publishes the microphone, as the button does."""
        call = self._call
        if call is None:
            raise ClientError("not in a meeting")
        sender = call.audio.sender
        if pressed and not self.microphone_on:
            if sender is None:
                sender = await self._publish(call)
                await call.audio.set_muted(True)
            sender.muted = False
            self._talking = True
        elif not pressed and self._talking and sender is not None:
            sender.muted = True
            self._talking = False
        self._changed()

    def set_volume(self, user: str, percent: int) -> None:
        """``user``'s loudness for us, 0 to 200 %."""
        if not 0 <= percent <= MAX_VOLUME_PERCENT:
            raise ClientError(f"a volume is 0 to {MAX_VOLUME_PERCENT} %, not {percent}")
        self._volumes[user] = percent
        if self._call is not None:
            self._call.audio.set_volume(user, percent / 100.0)

    def set_silenced(self, user: str, silenced: bool) -> None:
        """Mute ``user`` for us only (the others still hear them)."""
        if silenced:
            self._silenced.add(user)
        else:
            self._silenced.discard(user)
        if self._call is not None:
            self._call.audio.set_speaker_muted(user, silenced)

    def stats_line(self, user: str) -> str:
        """A line for ``user``'s tile: their audio as we play it."""
        call = self._call
        if call is None:
            return ""
        receiver = next(
            (r for r in call.audio.receivers.values() if r.track.owner == user), None
        )
        if receiver is None:
            return ""
        stats = receiver.stats_dict()
        if user in self._silenced:
            played = "muted for you"
        else:
            level = cast(float, stats.get("played_dbov", -127.0))
            played = f"played {level:.0f} dBov"
        volume = self._volumes.get(user, 100)
        target = cast(float, stats.get("target_delay_ms", 0.0))
        line = f"audio: {played} · volume {volume}% · buffer {target:.0f} ms"
        sync = receiver.lip_sync.stats_dict() if receiver.lip_sync else {}
        if sync.get("median") is not None:
            line += f" · A/V {sync['median']:+.0f} ms"
        return line

    def devices_line(self) -> str:
        """A line for our own tile: how our speaker and microphone keep up
        (underruns and overruns are callbacks that came too late), the
        device buffer each runs with now and how often it changed."""
        host = self._host
        if host is None:
            return ""
        report = host.report()
        parts = []
        if host.device_open(True) and report["speaker_s"] is not None:
            parts.append(
                f"speaker {round(cast(float, report['speaker_s']))} s, "
                f"{report['underflows']} underruns, "
                f"buffer {cast(float, report['speaker_latency_ms']):.0f} ms"
            )
        if host.device_open(False):
            parts.append(
                f"microphone {report['overflows']} overruns, "
                f"{report['dropped']} dropped, "
                f"buffer {cast(float, report['microphone_latency_ms'] or 0):.0f} ms"
            )
        steps = cast(list[object], report["latency_steps"])
        if parts and steps:
            parts.append(f"{len(steps)} buffer steps")
        return "sound: " + " · ".join(parts) if parts else ""

    # -- internals ----------------------------------------------------------------

    async def _publish(self, call: Call) -> AudioSender:
        microphone = self._settings().microphone
        if microphone == "none":
            raise ClientError("no microphone is chosen in the settings")
        sender = await call.audio.publish(
            self._source(microphone, self._settings().buffer_s)
        )
        self._in_use = AudioSettings(microphone, self._in_use.speaker)
        return sender

    async def _open_speaker(self, speaker: str) -> None:
        from ...media.audio_link import OpenDevice
        from ...media.errors import AudioUnavailable

        host = self._host
        assert host is not None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, host.close_device, True)
        # While the speaker opens (the audio process starting: seconds on a
        # busy machine, with a fresh install's imports) sound is not "off":
        # the window would show "No sound" for a speaker about to play.
        self.problem = ""
        self._in_use = AudioSettings(self._in_use.microphone, speaker)
        if speaker == "none":
            self.problem = "the speaker is off"
            return
        request = OpenDevice(True, speaker, self._settings().buffer_s)
        try:
            await loop.run_in_executor(None, host.open_device, request)
        except AudioUnavailable as exc:
            self._set_problem(str(exc))

    def _source(self, microphone: str, buffer_s: float | None) -> AudioSource:
        from ...media.audio_host import HostMicrophone
        from ...media.audio_sources import ToneSource

        if microphone == TEST_TONE:
            return ToneSource()
        assert self._host is not None
        return HostMicrophone(self._host, microphone, buffer_s)

    def _host_said(self, text: str) -> None:
        # A restarted audio process plays again: a toast, not "No sound".
        log.warning("%s", text)
        self._post(Notice("Sound", text, "warning"))

    def _set_problem(self, text: str) -> None:
        log.warning("%s", text)
        self.problem = text
        self._changed()

    def _on_audio_event(self, event: AudioEvent) -> None:
        from ...media.audio_call import MuteAsked, SpeakingChanged

        if isinstance(event, MuteAsked):
            self._changed()
            return
        if isinstance(event, SpeakingChanged):
            if event.speaking:
                self._speaking.add(event.user)
            else:
                self._speaking.discard(event.user)
        else:
            self._active = event.speaker
        self._post(AudioActivity(tuple(sorted(self._speaking)), self._active))
