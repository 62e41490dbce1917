"""The meeting's statistics, one line per tile, made once a second on the
loop thread: each remote video's size, frame rate, bitrate, loss and the
round trip; what we send; each person's audio as we play it; our own sound
devices."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from codec.media.simulcast import spatial_layers

from .meeting_audio import MeetingAudio

if TYPE_CHECKING:
    from ...media import Call

__all__ = ["STATS_INTERVAL_S", "TileStatLines"]

STATS_INTERVAL_S = 1.0


@dataclass
class _Counters:
    frames: int = 0
    bytes: int = 0
    packets: int = 0
    lost: int = 0


class TileStatLines:
    """Makes the lines; ``rtt_ms()`` gives the connection's round trip and
    ``me()`` our username. Rates are over the time since the last call."""

    def __init__(
        self,
        audio: MeetingAudio,
        rtt_ms: Callable[[], float | None],
        me: Callable[[], str | None],
    ) -> None:
        self._audio = audio
        self._rtt_ms = rtt_ms
        self._me = me
        self._counters: dict[str, _Counters] = {}

    def clear(self) -> None:
        """A new call: rates start again."""
        self._counters.clear()

    def lines(self, call: Call) -> list[tuple[str, str]]:
        """(tile key, line) for every tile with something to say; a person's
        audio goes under ``audio:<username>``."""
        rtt = self._rtt_ms()
        rtt_text = f"rtt {rtt:.0f} ms" if rtt is not None else "rtt –"
        lines = []
        for track_id, receiver in call.receivers.items():
            stats = receiver.stats
            delta = self._delta(
                f"track:{track_id}",
                _Counters(
                    stats.frames_rendered,
                    stats.bytes_received,
                    stats.packets_received,
                    # Not stats_dict(): it sorts every latency of the call.
                    receiver.packets_lost,
                ),
            )
            packets = delta.packets + delta.lost
            loss = 100.0 * delta.lost / packets if packets else 0.0
            track = receiver.track
            layered = len(spatial_layers(track.width, track.height)) > 1
            layer = f" layer {stats.layer}" if layered else ""
            lines.append(
                (
                    f"track:{track_id}",
                    f"{stats.width}x{stats.height}{layer} · {delta.frames} fps · "
                    f"{delta.bytes * 8 // 1000} kbit/s · loss {loss:.1f}% · {rtt_text}",
                )
            )
        for user in sorted({r.track.owner for r in call.audio.receivers.values()}):
            lines.append((f"audio:{user}", self._audio.stats_line(user)))
        devices = self._audio.devices_line()
        me = self._me()
        if devices and me is not None:
            lines.append((f"audio:{me}", devices))
        for kind, sender in call.senders.items():
            sent = sender.stats
            delta = self._delta(
                f"self:{kind}",
                _Counters(sent.frames_sent, sent.bytes_sent, sent.packets_sent, 0),
            )
            source = sender.source
            quality = sender.quality
            size = (
                f"{source.width}x{source.height}"
                if quality is None
                else f"{quality.width}x{quality.height} (rung {quality.rung})"
            )
            layers = sender.layers
            if layers.layered:
                now = time.monotonic()
                encoded = [
                    str(layer.index)
                    for layer in layers.layers
                    if layers.wanted_bps(layer.index, now) is not None
                ]
                size += f" · layers {'+'.join(encoded) or 'none'}"
            estimate = call.hop.estimator
            lines.append(
                (
                    f"self:{kind}",
                    f"{size} · {delta.frames} fps · "
                    f"{delta.bytes * 8 // 1000}/{sender.bitrate_bps // 1000} kbit/s "
                    f"sent/target · estimate {estimate.target_bps / 1000:.0f} kbit/s "
                    f"· loss {100 * estimate.loss_fraction:.1f}% · {rtt_text}",
                )
            )
        return lines

    def _delta(self, key: str, now: _Counters) -> _Counters:
        before = self._counters.get(key, _Counters())
        self._counters[key] = now
        return _Counters(
            now.frames - before.frames,
            now.bytes - before.bytes,
            now.packets - before.packets,
            now.lost - before.lost,
        )
