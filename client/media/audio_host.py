"""The engine's side of the audio process: start it, feed it, watch it.

:class:`AudioHost` runs :mod:`client.media.audio_process` for a meeting: it
makes the shared memory block with the two rings, starts the process with a
pipe on its stdin (closing it is how the process learns to stop, and how it
learns that a crashed engine is gone), writes every audio datagram and
setting down, and reads what comes up on a thread of its own: captured
frames for the microphone track (:class:`HostMicrophone`), lip sync's played
marks, the counters. When the process dies it says so (``on_problem``),
starts a new one and opens the same devices and tracks again.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from multiprocessing import shared_memory

import msgspec
import numpy as np

from codec.media import AudioPacket
from codec.media.audio import ByteRing
from codec.messages import RoomTrack

from . import audio_link as link
from .audio_devices import mic_timeout_s
from .errors import AudioUnavailable, SourceError
from .lip_sync import LipSync

__all__ = ["AudioHost", "HostMicrophone", "RemoteReceiver"]

log = logging.getLogger("quicmeet.media")

DOWN_BYTES = 1 << 20
"""The engine's ring: about 10 s of one speaker's packets."""
UP_BYTES = 1 << 20
"""The audio process's ring: about 10 s of captured frames."""
POLL_S = 0.005
SYNC_EVERY_S = 0.1
"""How often lip sync's wanted delay goes down."""
OPEN_TIMEOUT_S = 30.0
"""How long a device may take to open, the process's start included (PyAV
and livekit load first: seconds on a slow, busy machine)."""


class RemoteReceiver:
    """A remote speaker's track played by the audio process: what the call
    keeps of it (the track, its lip sync, its last counters)."""

    def __init__(self, host: AudioHost, track: RoomTrack, lip_sync: LipSync) -> None:
        self.track = track
        self.lip_sync = lip_sync
        self._host = host

    def push(self, packet: AudioPacket, now: float) -> None:
        """Send a datagram that arrived at ``now`` to the audio process."""
        self._host.push(packet, now)

    def stats_dict(self) -> dict[str, object]:
        """The audio process's last counters for this track, with our lip
        sync's offsets."""
        values: dict[str, object] = {
            "user": self.track.owner,
            "kind": self.track.kind,
            "track_id": self.track.track_id,
        }
        values.update(self._host.track_stats(self.track.track_id))
        values["av_offset_ms"] = self.lip_sync.stats_dict()
        return values

    def close(self) -> None:
        """Nothing to free here: the audio process frees the decoder."""


class HostMicrophone:
    """A microphone opened in the audio process, as an
    :class:`~client.media.audio_sources.AudioSource`: its frames come up the
    ring already cleaned (echo cancellation, noise suppression, gain)."""

    stamped = False

    def __init__(
        self,
        host: AudioHost,
        device: str,
        latency_s: float | None,
        *,
        clean: bool = True,
    ) -> None:
        self.device = device
        self.latency_s = latency_s
        self.clean = clean
        """Run the capture chain (off: frames as the device gave them)."""
        self._host = host
        self._request: link.OpenDevice | None = None
        self._started = False

    def open(self) -> None:
        request = link.OpenDevice(False, self.device, self.latency_s, self.clean)
        self._host.open_device(request)
        self._request = request
        self._started = False

    def read(self) -> tuple[np.ndarray, float]:
        timeout = mic_timeout_s(self._started)
        try:
            item = self._host.captured.get(timeout=timeout)
        except queue.Empty:
            raise SourceError(
                f"the microphone delivered nothing for {timeout:g} s"
            ) from None
        if item is None:
            raise SourceError("the audio process stopped")
        self._started = True
        return item

    def close(self) -> None:
        # Only our own: after a switch the new microphone is already open.
        if self._request is not None:
            self._host.close_device(False, self._request)
            self._request = None


class AudioHost:
    """One audio process and its rings; :meth:`start`, then the devices and
    tracks, :meth:`stop` at the end. ``on_problem(text)`` (called on the
    host's thread) hears of a process that died and was restarted."""

    def __init__(
        self,
        on_problem: Callable[[str], object] = lambda text: None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.on_problem = on_problem
        self.env = env
        """The process's environment (None: ours), e.g. PulseAudio's
        ``PULSE_SINK`` and ``PULSE_SOURCE``."""
        self.captured: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(50)
        self.stats: link.Stats | None = None
        """The audio process's last counters."""
        self.restarts = 0
        self.refused = 0
        """Records the audio process's ring had no room for (it is behind)."""
        self.microphone_dropped = 0
        """Captured frames the microphone track did not take in time."""
        self.receivers: dict[int, RemoteReceiver] = {}
        self.latency_s: dict[bool, float] = {}
        """What the speaker (True) and microphone (False) reported they
        buffer when they last opened, seconds."""
        self._volumes: dict[str, tuple[float, bool]] = {}
        self._loudest: dict[int, float] = {}
        """Each track's loudest ``played_dbov`` since :meth:`track_stats`
        last read it (the process reports one per 250 ms period)."""
        self._devices: dict[bool, link.OpenDevice] = {}
        self._waiting: dict[bool, concurrent.futures.Future[link.DeviceState]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._block: shared_memory.SharedMemory | None = None
        self._down: ByteRing | None = None
        self._up: ByteRing | None = None
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The audio process's id while it runs."""
        return None if self._process is None else self._process.pid

    @property
    def block_name(self) -> str | None:
        """The shared memory block's name while the process runs."""
        return None if self._block is None else self._block.name

    def start(self) -> None:
        """Start the audio process (blocks briefly: call it off the loop)."""
        self._spawn()
        self._thread = threading.Thread(
            target=self._run, name="audio-host", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the process (its devices close) and free the shared memory."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._end_process()
        self.captured.put(None)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(AudioUnavailable("audio is off: stopped"))

    # -- devices and tracks ----------------------------------------------------------

    def open_device(self, request: link.OpenDevice) -> float:
        """Open a device in the audio process and wait for it (blocks: call
        it off the loop); returns the latency it reports, seconds. Raises
        :class:`AudioUnavailable` with the device's message."""
        future: concurrent.futures.Future[link.DeviceState] = (
            concurrent.futures.Future()
        )
        with self._lock:
            self._waiting[request.output] = future
            self._devices[request.output] = request
            self._write(request)
        try:
            state = future.result(OPEN_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            raise AudioUnavailable(
                "audio is off: the audio process did not open the device"
            ) from None
        if state.error:
            with self._lock:
                if self._devices.get(request.output) is request:
                    del self._devices[request.output]
            raise AudioUnavailable(state.error)
        self.latency_s[request.output] = state.latency_s
        return state.latency_s

    def close_device(
        self, output: bool, request: link.OpenDevice | None = None
    ) -> None:
        """Close the speaker (``output``) or microphone (only if it is still
        the one ``request`` opened, when given)."""
        with self._lock:
            if request is not None and self._devices.get(output) is not request:
                return
            if self._devices.pop(output, None) is not None:
                self._write(link.CloseDevice(output))

    def device_open(self, output: bool) -> bool:
        """Whether the speaker (``output``) or microphone is open."""
        return output in self._devices

    def add_track(self, track: RoomTrack, lip_sync: LipSync) -> RemoteReceiver:
        receiver = RemoteReceiver(self, track, lip_sync)
        with self._lock:
            self.receivers[track.track_id] = receiver
            self._write(link.AddTrack(track.track_id, track.owner))
        return receiver

    def remove_track(self, track_id: int) -> None:
        with self._lock:
            if self.receivers.pop(track_id, None) is not None:
                self._write(link.RemoveTrack(track_id))

    def set_volume(self, user: str, volume: float, muted: bool) -> None:
        with self._lock:
            self._volumes[user] = (volume, muted)
            self._write(link.SetVolume(user, volume, muted))

    def push(self, packet: AudioPacket, now: float) -> None:
        message = link.Packet(
            packet.track_id,
            packet.seq,
            packet.timestamp,
            packet.voice_activity,
            bytes(packet.payload),
            now,
        )
        with self._lock:
            self._write(message)

    def track_stats(self, track_id: int) -> dict[str, object]:
        """The last counters of ``track_id`` (empty before the first), with
        ``played_dbov`` the loudest 20 ms played since the last call, as
        the mixer's own (a 200 ms buzz a second is in one period of four:
        the last period alone mostly said silence)."""
        stats = self.stats
        values = {} if stats is None else dict(stats.tracks.get(track_id, {}))
        with self._lock:
            loudest = self._loudest.pop(track_id, None)
        if loudest is not None:
            values["played_dbov"] = loudest
        return values

    def report(self) -> dict[str, object]:
        """The devices' health as plain values for a stats file."""
        stats = self.stats
        return {
            "pid": self.pid,
            "restarts": self.restarts,
            "speaker_s": None if stats is None else round(stats.speaker_s, 1),
            "underflows": None if stats is None else stats.underruns,
            "overflows": None if stats is None else stats.overruns,
            "dropped": self.microphone_dropped
            + (0 if stats is None else stats.dropped),
            "refused": self.refused + (0 if stats is None else stats.refused),
            "speaker_latency_ms": None if stats is None else stats.speaker_latency_ms,
            "microphone_latency_ms": None
            if stats is None
            else stats.microphone_latency_ms,
            "latency_steps": []
            if stats is None
            else [msgspec.structs.asdict(step) for step in stats.latency_steps],
        }

    # -- the process ---------------------------------------------------------------

    def _write(self, message: link.Down) -> None:
        # Under self._lock: several threads write, the ring takes one.
        if self._down is not None and not self._down.write(link.encode(message)):
            self.refused += 1

    def _spawn(self) -> None:
        block = shared_memory.SharedMemory(create=True, size=DOWN_BYTES + UP_BYTES)
        assert block.buf is not None  # None only once closed
        self._down, self._up = link.split_rings(block.buf, DOWN_BYTES, reset=True)
        self._block = block
        self._process = subprocess.Popen(
            self._command(block.name),
            stdin=subprocess.PIPE,
            env=None if self.env is None else dict(self.env),
        )

    def _command(self, block_name: str) -> list[str]:
        """The audio process's command line, its rings in ``block_name``."""
        return [
            sys.executable,
            "-m",
            "client.media.audio_process",
            "--shm",
            block_name,
            "--down-bytes",
            str(DOWN_BYTES),
        ]

    def _end_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for ring in (self._down, self._up):
            if ring is not None:
                ring.release()
        self._down = self._up = None
        block, self._block = self._block, None
        if block is not None:
            block.close()
            block.unlink()

    def _restart(self, code: int | None) -> None:
        self.on_problem(
            f"the audio process stopped (exit code {code}); started it again"
        )
        with self._lock:
            self._end_process()
            self.stats = None
            self._spawn()
            for receiver in self.receivers.values():
                track = receiver.track
                self._write(link.AddTrack(track.track_id, track.owner))
            for user, (volume, muted) in self._volumes.items():
                self._write(link.SetVolume(user, volume, muted))
            for request in self._devices.values():
                self._write(request)
        self.restarts += 1

    def _run(self) -> None:
        next_check = 0.0
        while not self._stopping.is_set():
            up = self._up
            record = None if up is None else up.read()
            if record is not None:
                self._take(link.decode_up(record))
                continue
            now = time.monotonic()
            if now >= next_check:
                next_check = now + SYNC_EVERY_S
                process = self._process
                code = None if process is None else process.poll()
                if code is not None:
                    self._restart(code)
                    continue
                with self._lock:
                    for track_id, receiver in self.receivers.items():
                        wanted = receiver.lip_sync.audio_delay_wanted_s()
                        self._write(link.SetSyncDelay(track_id, wanted))
            time.sleep(POLL_S)

    def _take(self, message: link.Up) -> None:
        if isinstance(message, link.Captured):
            frame = np.frombuffer(message.samples, dtype="<i2").astype(np.int16)
            try:
                self.captured.put_nowait((frame, message.capture_s))
            except queue.Full:
                self.microphone_dropped += 1
        elif isinstance(message, link.Played):
            receiver = self.receivers.get(message.track_id)
            if receiver is not None:
                receiver.lip_sync.audio_played_at(message.timestamp, message.heard_s)
        elif isinstance(message, link.Stats):
            with self._lock:
                for track_id, values in message.tracks.items():
                    level = values.get("played_dbov")
                    if isinstance(level, int | float):
                        self._loudest[track_id] = max(
                            level, self._loudest.get(track_id, level)
                        )
            self.stats = message
        else:
            future = self._waiting.pop(message.output, None)
            if future is not None and not future.done():
                future.set_result(message)
            elif message.error:
                self.on_problem(message.error)
