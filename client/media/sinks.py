"""Where rendered video can go besides a window: Y4M streams and PNG snapshots.

Both are :data:`~client.media.receiver.FrameConsumer`\\ s, called on a track's
render thread with each picture as it is rendered.

- :class:`Y4mSink` (``--sink y4m:PATH``) writes each remote video track to a
  YUV4MPEG2 stream, a file or a named pipe that another program reads. In PATH,
  ``{user}`` becomes the publishing member's name, ``{kind}`` the track's kind
  and ``{track}`` its id. A named pipe is opened only once a reader is there;
  until then its pictures are skipped, so the meeting never waits for it.
- :class:`FrameSaver` (``--save-frames DIR --every N``) saves every Nth
  rendered picture of each track as a PNG.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
from PIL import Image

from codec.messages import RoomTrack

from .errors import SinkError
from .frames import DecodedFrame

__all__ = ["FrameSaver", "Y4mSink", "parse_sink", "y4m_header"]

log = logging.getLogger("quicmeet.media")


def y4m_header(width: int, height: int, fps: float) -> bytes:
    """The stream header of 4:2:0 YUV4MPEG2 at ``fps`` frames per second."""
    rate = Fraction(fps).limit_denominator(1001)
    return (
        f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} "
        "Ip A1:1 C420jpeg\n"
    ).encode()


def _yuv420(frame: DecodedFrame, width: int, height: int) -> bytes:
    video = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
    planes = video.reformat(width=width, height=height, format="yuv420p")
    return planes.to_ndarray().tobytes()


class _Stream:
    """One track's Y4M output."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.out: BinaryIO | None = None
        self.size: tuple[int, int] | None = None
        self.frames_written = 0
        self.frames_skipped = 0
        self.failed = False


class Y4mSink:
    """Writes each remote video track's rendered pictures as a Y4M stream.

    ``template`` is the output path with ``{user}``, ``{kind}`` and ``{track}``
    placeholders. A track's stream keeps the size of its first picture (later
    pictures are scaled to it, as Y4M cannot change size mid-stream). Two
    tracks that would write the same path raise :class:`SinkError`.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self._streams: dict[int, _Stream] = {}
        self._lock = threading.Lock()

    def path_for(self, track: RoomTrack) -> Path:
        try:
            text = self.template.format(
                user=track.owner, kind=track.kind, track=track.track_id
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise SinkError(
                f"bad placeholder in sink path {self.template!r}: {exc}"
            ) from None
        return Path(text)

    def __call__(self, track: RoomTrack, frame: DecodedFrame) -> None:
        stream = self._stream(track)
        if stream.failed:
            return
        if stream.out is None and not self._open(stream):
            stream.frames_skipped += 1
            return
        assert stream.out is not None
        if stream.size is None:
            height, width = frame.image.shape[:2]
            stream.size = (width, height)
            stream.out.write(y4m_header(width, height, track.fps or 30.0))
        width, height = stream.size
        try:
            stream.out.write(b"FRAME\n" + _yuv420(frame, width, height))
            stream.out.flush()
        except BrokenPipeError:
            log.warning("the reader of %s went away; its stream stops", stream.path)
            self._close(stream)
            stream.failed = True
            return
        stream.frames_written += 1

    def _stream(self, track: RoomTrack) -> _Stream:
        with self._lock:
            stream = self._streams.get(track.track_id)
            if stream is None:
                path = self.path_for(track)
                if any(s.path == path for s in self._streams.values()):
                    raise SinkError(
                        f"two tracks would write {path}: put {{user}}, {{kind}} or "
                        "{track} in the sink path"
                    )
                stream = self._streams[track.track_id] = _Stream(path)
            return stream

    @staticmethod
    def _open(stream: _Stream) -> bool:
        """Open the output; False while a named pipe has no reader yet."""
        path = stream.path
        try:
            is_pipe = stat.S_ISFIFO(os.stat(path).st_mode)
        except FileNotFoundError:
            is_pipe = False
        try:
            if is_pipe:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                os.set_blocking(fd, True)
                stream.out = os.fdopen(fd, "wb")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                stream.out = open(path, "wb")
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return False
            raise SinkError(f"cannot write {path}: {exc.strerror}") from None
        return True

    @staticmethod
    def _close(stream: _Stream) -> None:
        if stream.out is not None:
            try:
                stream.out.close()
            except BrokenPipeError:
                pass  # the reader left; nothing more to flush to
            stream.out = None

    def close(self) -> None:
        """Close every stream."""
        with self._lock:
            for stream in self._streams.values():
                self._close(stream)

    def report(self) -> list[dict[str, object]]:
        """Per track: where it went and how many pictures were written or skipped."""
        with self._lock:
            return [
                {
                    "track_id": track_id,
                    "path": str(s.path),
                    "frames_written": s.frames_written,
                    "frames_skipped": s.frames_skipped,
                }
                for track_id, s in self._streams.items()
            ]


class FrameSaver:
    """Saves every ``every``-th rendered picture of each track as
    ``DIR/{user}-{kind}-{track}-{n:06d}.png`` (``n`` counts the track's
    rendered pictures from 0)."""

    def __init__(self, directory: Path, every: int) -> None:
        if every < 1:
            raise ValueError(f"--every must be at least 1, got {every}")
        self.directory = directory
        self.every = every
        self.saved = 0
        self._rendered: dict[int, int] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, track: RoomTrack, frame: DecodedFrame) -> None:
        index = self._rendered.get(track.track_id, 0)
        self._rendered[track.track_id] = index + 1
        if index % self.every:
            return
        name = f"{track.owner}-{track.kind}-{track.track_id}-{index:06d}.png"
        try:
            Image.fromarray(frame.image).save(self.directory / name)
        except OSError as exc:
            raise SinkError(f"cannot save {name}: {exc}") from None
        self.saved += 1


def parse_sink(spec: str) -> Y4mSink:
    """The sink a ``--sink`` spec names: ``y4m:PATH`` is the one kind so far."""
    kind, _, path = spec.partition(":")
    if kind != "y4m" or not path:
        raise ValueError(f"unknown sink {spec!r}: use y4m:PATH")
    return Y4mSink(path)
