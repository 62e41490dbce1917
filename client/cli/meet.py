"""``meet``: a headless meeting participant, for scripts, tests and benchmarks.

``quicmeet-cli meet (--create | --room ID) [--password P] --video SOURCE
[--screen SOURCE] [--audio SOURCE] [--play SINK] [--duration SECONDS]
[--view-size WxH] [--stats FILE] [--sink y4m:PATH] [--save-frames DIR --every N]``
joins (or creates) a room, sends its video and audio, receives everyone
else's, renders video to the sinks and plays the audio mix, and at the end
writes per-track statistics as JSON: frames received, decoded and rendered,
frame rate, keyframe requests, packets lost, bitrate, and, for stamped
(synthetic) sources, glass-to-glass latency percentiles read from the
pictures; per speaker: packets received, lost, concealed, recovered by FEC,
jitter-buffer delay and, for the stamped tone, mouth-to-ear latency. Without
PortAudio or a device, audio is off with a note on stderr and the rest goes
on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from codec.messages.rooms import TrackKind

from ..media import (
    AudioSink,
    AudioSource,
    AudioUnavailable,
    Call,
    FrameConsumer,
    FrameSaver,
    MicSource,
    SourceError,
    VideoSource,
    Y4mSink,
    parse_audio_sink,
    parse_audio_source,
    parse_sink,
    parse_video_source,
)
from ..media.audio_processing import load as load_canceller
from ..session import Session
from .rooms import room_text, wait_in_room
from .runner import EXIT_USAGE, CliFailure, Context, to_json

__all__ = ["EXIT_MEDIA", "add_commands"]

EXIT_MEDIA = 5
"""Exit status when a video source or sink fails."""

CAMERA_DEFAULT = ((640, 480), 30.0)
SCREEN_DEFAULT = ((1280, 720), 10.0)
"""Screen share: more pixels, fewer frames, so text stays legible."""


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or size[0] <= 0 or size[1] <= 0 or size[0] % 2 or size[1] % 2:
        raise argparse.ArgumentTypeError(f"not an even WIDTHxHEIGHT: {text!r}")
    return size


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _source(
    spec: str, size: tuple[int, int] | None, fps: float | None, default_kind: TrackKind
) -> tuple[VideoSource, TrackKind]:
    kind: TrackKind = "screen" if spec.split(":")[0] == "screen" else default_kind
    (default_size, default_fps) = SCREEN_DEFAULT if kind == "screen" else CAMERA_DEFAULT
    width, height = size or default_size
    try:
        return parse_video_source(spec, width, height, fps or default_fps), kind
    except ValueError as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


async def cmd_meet(ctx: Context, args: argparse.Namespace) -> None:
    sources: list[tuple[VideoSource, TrackKind]] = []
    if args.video != "none":
        sources.append(_source(args.video, args.size, args.fps, "camera"))
    if args.screen is not None:
        sources.append(
            _source(args.screen, args.screen_size, args.screen_fps, "screen")
        )
    if len({kind for _, kind in sources}) < len(sources):
        raise CliFailure(
            "--video screen and --screen would both share a screen", EXIT_USAGE
        )
    try:
        audio_source: AudioSource | None = parse_audio_source(args.audio)
        audio_sink: AudioSink | None = parse_audio_sink(args.play)
    except ValueError as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None
    if isinstance(audio_source, MicSource):
        load_canceller()  # before the speaker plays (see its docstring)
    consumers: list[FrameConsumer] = []
    sink: Y4mSink | None = None
    saver: FrameSaver | None = None
    try:
        if args.sink is not None:
            sink = parse_sink(args.sink)
            consumers.append(sink)
        if args.save_frames is not None:
            saver = FrameSaver(args.save_frames, args.every)
            consumers.append(saver)
    except (ValueError, OSError) as exc:
        raise CliFailure(str(exc), EXIT_USAGE) from None

    session = await ctx.logged_in()
    if args.create:
        state = await session.rooms.create(args.password)
    else:
        state = await session.rooms.join(args.room, args.password)
    ctx.emit({"room": state}, room_text(state))

    call = Call(session, consumers, audio_sink=audio_sink, view=args.view_size)
    call.start()
    if call.audio.unavailable is not None:
        ctx.note(call.audio.unavailable)
    started = time.monotonic()
    try:
        for source, kind in sources:
            try:
                await call.publish_video(source, kind, bitrate_bps=_bitrate(args, kind))
            except SourceError as exc:
                raise CliFailure(str(exc), EXIT_MEDIA, name="SOURCE_FAILED") from None
        if audio_source is not None:
            try:
                await call.audio.publish(audio_source)
            except AudioUnavailable as exc:
                ctx.note(str(exc))
            except SourceError as exc:
                raise CliFailure(str(exc), EXIT_MEDIA, name="SOURCE_FAILED") from None
        ended_by = await _meet_until_done(session, args.duration)
        elapsed = time.monotonic() - started
        report = call.stats()
    finally:
        await call.close()
        if sink is not None:
            sink.close()
    if session.rooms.state is not None and session.connected:
        await session.rooms.leave()
    report["duration_s"] = round(elapsed, 3)
    report["ended_by"] = ended_by
    if sink is not None:
        report["sink"] = sink.report()
    if saver is not None:
        report["frames_saved"] = saver.saved
    if args.stats is not None:
        _write_json(args.stats, to_json(report))
    ctx.emit(
        {"stats": report},
        "\n".join(
            [
                f"{r['user']} {r['kind']}: {r['frames_rendered']} frames rendered, "
                f"{r['fps']} fps"
                for r in report["received"]  # type: ignore[attr-defined]
            ]
            + [
                f"{r['user']} audio: {r['frames_played']} frames played, "
                f"{r['packets_lost']} lost, {r['frames_fec_recovered']} by FEC"
                for r in report["audio_received"]  # type: ignore[attr-defined]
            ]
        )
        or "no media received",
    )


async def _meet_until_done(session: Session, duration: float | None) -> str:
    """Stay until the duration passes, the meeting ends for us, or SIGINT or
    SIGTERM asks us to stop (the statistics are still written then)."""
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, interrupted.set)
    waiting = loop.create_task(wait_in_room(session, duration))
    stopping = loop.create_task(interrupted.wait())
    try:
        await asyncio.wait((waiting, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        stopping.cancel()
        waiting.cancel()
    return (
        waiting.result()
        if waiting.done() and not waiting.cancelled()
        else "interrupted"
    )


def _bitrate(args: argparse.Namespace, kind: str) -> int | None:
    return args.screen_bitrate if kind == "screen" else args.bitrate


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser(
        "meet", help="take part in a meeting headless: send, receive, measure"
    )
    room = p.add_mutually_exclusive_group(required=True)
    room.add_argument("--create", action="store_true", help="create a room as host")
    room.add_argument("--room", metavar="ID", help="join this room")
    p.add_argument("--password", help="the room's password (set it with --create)")
    p.add_argument(
        "--video",
        default="synthetic",
        metavar="SOURCE",
        help="synthetic[:SEED], camera[:N], screen[:N|:LEFT,TOP,WIDTH,HEIGHT], "
        "file:PATH_OR_URL, or none (default: synthetic)",
    )
    p.add_argument(
        "--size", type=_size, help="video size WxH (default 640x480; screen 1280x720)"
    )
    p.add_argument(
        "--fps", type=_positive, help="video frame rate (default 30; screen 10)"
    )
    p.add_argument(
        "--bitrate", type=int, metavar="BPS", help="video start bitrate, bits/s"
    )
    p.add_argument(
        "--screen",
        metavar="SOURCE",
        help="also share a screen track from SOURCE (as --video, e.g. screen:1)",
    )
    p.add_argument("--screen-size", type=_size, help="screen track size (1280x720)")
    p.add_argument("--screen-fps", type=_positive, help="screen track rate (10)")
    p.add_argument("--screen-bitrate", type=int, metavar="BPS")
    p.add_argument(
        "--audio",
        default="none",
        metavar="SOURCE",
        help="tone (stamped test buzz), wav:PATH, silence, mic[:DEVICE], or none "
        "(default)",
    )
    p.add_argument(
        "--play",
        default="none",
        metavar="SINK",
        help="where the audio mix goes: speaker[:DEVICE], wav:PATH, or none (default)",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="stay this long (default: until interrupted or the meeting ends)",
    )
    p.add_argument(
        "--view-size",
        type=_size,
        metavar="WxH",
        help="show remote video at most this large: the server sends no larger "
        "simulcast layer than that needs (default: no limit)",
    )
    p.add_argument("--stats", type=Path, metavar="FILE", help="write JSON stats here")
    p.add_argument(
        "--sink",
        metavar="y4m:PATH",
        help="also write each remote video track to a Y4M stream; {user}, {kind} "
        "and {track} in PATH name the track (a file or a named pipe)",
    )
    p.add_argument(
        "--save-frames", type=Path, metavar="DIR", help="save rendered frames as PNG"
    )
    p.add_argument(
        "--every",
        type=int,
        default=30,
        metavar="N",
        help="with --save-frames: every Nth frame of each track (default 30)",
    )
    p.set_defaults(handler=cmd_meet)
