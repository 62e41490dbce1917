"""Reading what the receiver needs from an H.264 Annex B access unit without
decoding it: is it an IDR, and does it start an intra refresh wave.

With periodic intra refresh (x264's ``intra-refresh=1``) a stream has no IDR
after the first; each refresh wave starts with a recovery point SEI (H.264
D.1.7) whose ``recovery_frame_cnt`` says after how many more frames the
picture is whole again, whatever was lost before the wave began.
"""

from __future__ import annotations

__all__ = ["contains_idr", "recovery_frame_count"]

_START = b"\x00\x00\x01"
_NAL_SEI = 6
_NAL_IDR = 5
_SEI_RECOVERY_POINT = 6


def _nal_units(data: bytes) -> list[tuple[int, int]]:
    """(start of the NAL header byte, end) of each NAL unit of ``data``."""
    starts = []
    index = data.find(_START)
    while index != -1 and index + 3 < len(data):
        starts.append(index + 3)
        index = data.find(_START, index + 3)
    ends = [s - 3 for s in starts[1:]] + [len(data)]
    return list(zip(starts, ends[: len(starts)], strict=True))


def contains_idr(data: bytes) -> bool:
    """Whether an Annex B access unit holds an IDR slice (NAL unit type 5)."""
    return any(data[start] & 0x1F == _NAL_IDR for start, _ in _nal_units(data))


def recovery_frame_count(data: bytes) -> int | None:
    """The ``recovery_frame_cnt`` of the access unit's recovery point SEI, or
    None when it has none (or it is malformed: never raises)."""
    for start, end in _nal_units(data):
        if data[start] & 0x1F != _NAL_SEI:
            continue
        payload = _unescape(data[start + 1 : end])
        count = _sei_recovery(payload)
        if count is not None:
            return count
    return None


def _unescape(rbsp: bytes) -> bytes:
    """Drop the emulation prevention bytes (00 00 03 -> 00 00)."""
    return rbsp.replace(b"\x00\x00\x03", b"\x00\x00")


def _sei_recovery(payload: bytes) -> int | None:
    pos = 0
    while pos < len(payload) and payload[pos] != 0x80:  # rbsp trailing bits
        kind = 0
        while pos < len(payload) and payload[pos] == 0xFF:
            kind += 255
            pos += 1
        size = 0
        if pos + 1 >= len(payload):
            return None
        kind += payload[pos]
        pos += 1
        while pos < len(payload) and payload[pos] == 0xFF:
            size += 255
            pos += 1
        if pos >= len(payload):
            return None
        size += payload[pos]
        pos += 1
        if kind == _SEI_RECOVERY_POINT:
            return _exp_golomb(payload[pos : pos + size])
        pos += size
    return None


def _exp_golomb(data: bytes) -> int | None:
    """The first unsigned Exp-Golomb number of ``data``, None if cut short."""
    bits = "".join(f"{byte:08b}" for byte in data)
    zeros = len(bits) - len(bits.lstrip("0"))
    if 2 * zeros + 1 > len(bits):
        return None
    return (1 << zeros) - 1 + int(bits[zeros + 1 : 2 * zeros + 1] or "0", 2)
