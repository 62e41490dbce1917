"""The audio process: the meeting's sound devices, away from the engine's GIL.

``python -m client.media.audio_process --shm NAME`` is started by the
engine's :class:`~client.media.audio_host.AudioHost` for a meeting. It owns
the PortAudio streams (and soxr between a device's rate and 48 kHz), every
speaker's jitter buffer and decoder, the mix, and the capture chain (echo
cancellation against what it plays, noise suppression, gain): so the
device callbacks run on this small process's own interpreter, never waiting
for the engine's, which QUIC, the video decoders and uploads keep busy.

It talks to the engine through two :class:`~codec.media.audio.ring.ByteRing`
s in one shared memory block (down: the engine writes; up: this process
writes; :mod:`client.media.audio_link` says what), and exits when its stdin
closes, so an engine that dies leaves neither this process nor an open device
behind.
"""

from __future__ import annotations

import argparse
import mmap
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

import msgspec
import numpy as np

from codec.media import AudioPacket
from codec.media.audio import ByteRing, LatencyStep, OnsetDetector
from codec.messages import RoomTrack

from . import audio_link as link
from .audio_devices import Microphone, Speaker
from .audio_processing import EchoCanceller, load
from .audio_receiver import AudioPlayout, AudioReceiver
from .device_stream import DeviceStream
from .errors import AudioUnavailable

__all__ = ["main"]

POLL_S = 0.002
"""How often the process looks for the engine's records when there are none."""
STATS_EVERY_S = 0.25
ONSETS_KEPT = 60
"""Onsets of stamped audio reported (one a second: the last minute)."""


class _Sync:
    """What a receiver here knows of its speaker's lip sync: the delay the
    engine wants (sent down), and "played" marks sent up."""

    def __init__(self, track_id: int, send: Callable[[link.Up], None]) -> None:
        self.track_id = track_id
        self.wanted_s: float | None = None
        self.send = send

    def audio_delay_wanted_s(self) -> float | None:
        return self.wanted_s

    def audio_played(self, timestamp: int, heard_after_s: float = 0.0) -> None:
        self.send(link.Played(self.track_id, timestamp, time.time() + heard_after_s))

    def stats_dict(self) -> dict[str, object]:
        # The offsets are measured where the pictures are shown: the engine.
        return {}


class AudioProcess:
    """The process's state: devices, receivers, the mix; one up-ring writer
    shared (under a lock) by the device callbacks and the main loop."""

    def __init__(self, down: ByteRing, up: ByteRing) -> None:
        self.down = down
        self.up = up
        self.playout = AudioPlayout()
        self.receivers: dict[int, AudioReceiver] = {}
        self.syncs: dict[int, _Sync] = {}
        self.speaker: Speaker | None = None
        self.microphone: Microphone | None = None
        self.canceller: EchoCanceller | None = None
        self.refused = 0
        self.dropped = 0
        self.malformed = 0
        self._up_lock = threading.Lock()
        self._captured: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(50)
        self._cleaner: threading.Thread | None = None
        self.capture_onsets: deque[float] = deque(maxlen=ONSETS_KEPT)
        self.play_onsets: deque[float] = deque(maxlen=ONSETS_KEPT)
        self._capture_onsets = OnsetDetector()
        self._play_onsets = OnsetDetector()

    def send(self, message: link.Up) -> None:
        record = link.encode(message)
        with self._up_lock:
            if not self.up.write(record):
                self.refused += 1

    def handle(self, message: link.Down) -> None:
        """Do what one record of the engine says."""
        if isinstance(message, link.Packet):
            receiver = self.receivers.get(message.track_id)
            if receiver is not None:
                receiver.push(
                    AudioPacket(
                        track_id=message.track_id,
                        seq=message.seq,
                        transport_seq=0,
                        timestamp=message.timestamp,
                        level=127,
                        voice_activity=message.voice,
                        payload=message.payload,
                    ),
                    message.arrival_s,
                )
        elif isinstance(message, link.AddTrack):
            sync = _Sync(message.track_id, self.send)
            receiver = AudioReceiver(_track(message), sync)
            self.syncs[message.track_id] = sync
            self.receivers[message.track_id] = receiver
            self.playout.add(receiver)
        elif isinstance(message, link.RemoveTrack):
            self.playout.remove(message.track_id)
            self.syncs.pop(message.track_id, None)
            gone = self.receivers.pop(message.track_id, None)
            if gone is not None:
                gone.close()
        elif isinstance(message, link.SetVolume):
            self.playout.mixer.set_volume(message.user, message.volume)
            self.playout.mixer.set_muted(message.user, message.muted)
        elif isinstance(message, link.SetSyncDelay):
            if message.track_id in self.syncs:
                self.syncs[message.track_id].wanted_s = message.delay_s
        elif isinstance(message, link.OpenDevice):
            self.open(message)
        else:
            self.close(message.output)

    def open(self, message: link.OpenDevice) -> None:
        self.close(message.output)
        device = message.device or None
        try:
            if message.output:
                self.speaker = Speaker(
                    device, self.playout.pull, latency_s=message.latency_s
                )
                self.speaker.on_block = self._on_block
                self._play_onsets = OnsetDetector(rate=self.speaker.rate)
                self.speaker.on_step = self._on_speaker_step
                self.speaker.start()
                self.playout.output_delay_s = self.speaker.output_latency_s
                latency = self.speaker.output_latency_s
            else:
                self.canceller = _canceller() if message.clean else None
                self.playout.on_played = (
                    None if self.canceller is None else self.canceller.on_played
                )
                self._cleaner = threading.Thread(
                    target=self._clean, name="audio-capture", daemon=True
                )
                self._cleaner.start()
                self.microphone = Microphone(
                    device, self._on_frame, latency_s=message.latency_s
                )
                self.microphone.start()
                latency = self.microphone.latency_s
        except AudioUnavailable as exc:
            self.close(message.output)
            self.send(link.DeviceState(message.output, str(exc)))
            return
        self.send(link.DeviceState(message.output, "", latency))

    def close(self, output: bool) -> None:
        if output:
            speaker, self.speaker = self.speaker, None
            if speaker is not None:
                speaker.stop()
            return
        microphone, self.microphone = self.microphone, None
        if microphone is not None:
            microphone.stop()
        if self._cleaner is not None:
            self._captured.put(None)
            self._cleaner.join()
            self._cleaner = None

    def _on_speaker_step(self, step: LatencyStep) -> None:
        # Lip sync counts the speaker's buffer as part of the audio's delay.
        speaker = self.speaker
        if speaker is not None:
            self.playout.output_delay_s = speaker.output_latency_s

    def _on_block(self, block: np.ndarray, called_s: float) -> None:
        onset = self._play_onsets.feed(block, called_s)
        if onset is not None:
            self.play_onsets.append(onset)

    def _on_frame(self, frame: np.ndarray, capture_s: float) -> None:
        # PortAudio's thread: hand over, never wait.
        try:
            self._captured.put_nowait((frame, capture_s))
        except queue.Full:
            self.dropped += 1

    def _clean(self) -> None:
        while (item := self._captured.get()) is not None:
            frame, capture_s = item
            onset = self._capture_onsets.feed(frame, capture_s)
            if onset is not None:
                self.capture_onsets.append(onset)
            if self.canceller is not None:
                frame = self.canceller.process(frame)
            self.send(link.Captured(frame.astype("<i2").tobytes(), capture_s))

    def stats(self) -> link.Stats:
        tracks: dict[int, dict[str, object]] = {}
        for track_id, receiver in list(self.receivers.items()):
            values = receiver.stats_dict()
            values["played_dbov"] = self.playout.mixer.played_dbov(receiver.track.owner)
            tracks[track_id] = values
        speaker, microphone = self.speaker, self.microphone
        return link.Stats(
            tracks,
            0.0 if speaker is None else speaker.callbacks * 0.02,
            0 if speaker is None else speaker.underflows,
            0 if microphone is None else microphone.overflows,
            self.dropped,
            self.refused,
            list(self.capture_onsets),
            list(self.play_onsets),
            _latency_ms(speaker),
            _latency_ms(microphone),
            _steps(speaker) + _steps(microphone),
        )

    def run(self, stop: threading.Event) -> None:
        """Take the engine's records until ``stop``; then close the devices."""
        next_stats = time.monotonic() + STATS_EVERY_S
        try:
            while not stop.is_set():
                record = self.down.read()
                if record is None:
                    now = time.monotonic()
                    if now >= next_stats:
                        self.send(self.stats())
                        next_stats = now + STATS_EVERY_S
                    time.sleep(POLL_S)
                    continue
                try:
                    message = link.decode_down(record)
                except msgspec.DecodeError:
                    self.malformed += 1
                    continue
                self.handle(message)
        finally:
            self.close(True)
            self.close(False)


def _latency_ms(device: DeviceStream | None) -> float:
    return 0.0 if device is None else round(device.latency_s * 1000.0, 1)


def _steps(device: DeviceStream | None) -> list[link.DeviceStep]:
    if device is None:
        return []
    return [
        link.DeviceStep(
            isinstance(device, Speaker),
            round(step.at_s - device.started_s, 1),
            round(step.from_s * 1000.0, 1),
            round(step.to_s * 1000.0, 1),
            step.reason,
        )
        for step in list(device.steps)
    ]


def _track(message: link.AddTrack) -> RoomTrack:
    return RoomTrack(
        track_id=message.track_id, owner=message.owner, kind="microphone", codec="opus"
    )


def _canceller() -> EchoCanceller | None:
    try:
        return EchoCanceller()
    except AudioUnavailable as exc:
        print(f"audio process: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m client.media.audio_process")
    parser.add_argument("--shm", required=True, help="the shared block's name")
    parser.add_argument("--down-bytes", type=int, required=True)
    args = parser.parse_args(argv)
    fd = os.open(f"/dev/shm/{args.shm}", os.O_RDWR)
    try:
        block = mmap.mmap(fd, 0)
    finally:
        os.close(fd)
    down, up = link.split_rings(memoryview(block), args.down_bytes, reset=False)
    process = AudioProcess(down, up)
    stop = threading.Event()

    def watch_engine() -> None:
        # Our stdin is a pipe from the engine: EOF means the engine is gone.
        sys.stdin.buffer.read()
        stop.set()

    threading.Thread(target=watch_engine, name="engine-watch", daemon=True).start()
    # Before any device runs: imported when the microphone opened, the
    # canceller held a playing speaker's callback back 65-98 ms (docs/audio.md).
    load()
    process.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
