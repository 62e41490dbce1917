"""A machine-readable stamp in the picture, for glass-to-glass latency.

The synthetic source draws each frame's number and capture time into the image
itself, so a receiver can read them back from the *decoded* picture and measure
latency across encoder, network, SFU and decoder. The stamp is a grid of
12 x 8 black or white cells in the top-left corner, each ``width / 40`` pixels
square (16 px at 640 wide, one macroblock), carrying 96 bits, most significant
first, row by row:

- frame number, 32 bits;
- capture time in milliseconds modulo 2**32, 32 bits;
- CRC-32 of ``b"qmstamp1"`` followed by the 8 bytes above.

Cells are read from their inner half; a cell whose mean is near mid-grey
(neither dark nor light), or a CRC mismatch, makes :func:`read_stamp` return None rather
than a wrong value. Because cell positions scale with the width, a stamp survives
the encoder's resolution ladder.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["STAMP_COLUMNS", "STAMP_ROWS", "SyntheticPattern", "read_stamp", "stamp"]

STAMP_COLUMNS = 12
STAMP_ROWS = 8
_CELLS_PER_WIDTH = 40
_MAGIC = b"qmstamp1"
_FIELDS = struct.Struct(">II")
_CHECKED = struct.Struct(">III")
# A quarter of the range either side of mid-grey: a low-bitrate encode smears
# cells by up to about 90 levels (a light cell read 172 at 320x240 and 150
# kbit/s), a grey one is damage, and the CRC catches what slips through.
_DARK_BELOW = 112.0
_LIGHT_ABOVE = 144.0


def _edges(width: int) -> tuple[list[int], list[int]]:
    step = width / _CELLS_PER_WIDTH
    xs = [round(i * step) for i in range(STAMP_COLUMNS + 1)]
    ys = [round(j * step) for j in range(STAMP_ROWS + 1)]
    return xs, ys


def _fits(frame: np.ndarray) -> bool:
    height, width = frame.shape[:2]
    xs, ys = _edges(width)
    return xs[1] - xs[0] >= 4 and ys[-1] <= height


def stamp(frame: np.ndarray, frame_no: int, capture_ms: int) -> None:
    """Draw the stamp into ``frame`` (an RGB ``(h, w, 3)`` uint8 array) in place.

    ``frame_no`` and ``capture_ms`` are taken modulo 2**32.
    """
    if not _fits(frame):
        raise ValueError(f"a {frame.shape[1]}x{frame.shape[0]} frame is too small")
    fields = _FIELDS.pack(frame_no & 0xFFFFFFFF, capture_ms & 0xFFFFFFFF)
    payload = fields + struct.pack(">I", zlib.crc32(_MAGIC + fields))
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    xs, ys = _edges(frame.shape[1])
    for index, bit in enumerate(bits):
        row, column = divmod(index, STAMP_COLUMNS)
        frame[ys[row] : ys[row + 1], xs[column] : xs[column + 1]] = 255 if bit else 0


def _inner_means(frame: np.ndarray) -> np.ndarray:
    """The mean of each cell's inner half (inset by a quarter of the cell on
    every side) over all channels: a ``(STAMP_ROWS, STAMP_COLUMNS)`` array.

    Two banded sums over the stamp's corner rather than one small reduction
    per cell: receivers read the stamp of every picture of every track, and
    96 reductions hold the GIL for far longer than two.
    """
    xs, ys = _edges(frame.shape[1])
    channels = frame.shape[2]
    # The corner's rows with their channels side by side: column 3x is pixel x.
    corner = frame[: ys[-1], : xs[-1]].reshape(ys[-1], xs[-1] * channels)
    x, y = np.array(xs), np.array(ys)
    inset_x, inset_y = (x[1:] - x[:-1]) // 4, (y[1:] - y[:-1]) // 4
    top, bottom = y[:-1] + inset_y, y[1:] - inset_y
    left, right = (x[:-1] + inset_x) * channels, (x[1:] - inset_x) * channels
    # reduceat sums from each index to the next: every other sum is a band.
    rows = np.add.reduceat(
        corner, np.stack([top, bottom], 1).ravel(), axis=0, dtype=np.int64
    )[::2]
    sums = np.add.reduceat(rows, np.stack([left, right], 1).ravel(), axis=1)[:, ::2]
    return sums / ((bottom - top)[:, None] * (right - left))


def read_stamp(frame: np.ndarray) -> tuple[int, int] | None:
    """Read ``(frame_no, capture_ms)`` back from a (decoded) RGB frame.

    Returns None when there is no intact stamp: never a wrong value short of a
    CRC-32 collision.
    """
    if frame.ndim != 3 or not _fits(frame):
        return None
    means = _inner_means(frame)
    if ((means > _DARK_BELOW) & (means < _LIGHT_ABOVE)).any():
        return None
    bits = (means >= _LIGHT_ABOVE).astype(np.uint8).ravel()
    frame_no, capture_ms, crc = _CHECKED.unpack(np.packbits(bits).tobytes())
    if zlib.crc32(_MAGIC + _FIELDS.pack(frame_no, capture_ms)) != crc:
        return None
    return frame_no, capture_ms


class SyntheticPattern:
    """Test video: a scrolling colour texture, a bouncing box, and the stamp.

    Pure and deterministic: :meth:`render` depends only on its arguments and the
    constructor's. The texture scrolls a few pixels per frame, so the encoder has
    real motion to search and residual to code, as with a camera panning.
    """

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        self.width = width
        self.height = height
        rng = np.random.default_rng(seed)
        y = np.arange(height, dtype=np.float32)[:, None] / height
        x = np.arange(width, dtype=np.float32)[None, :] / width
        channels = []
        for phase in rng.uniform(0, 2 * np.pi, size=(3, 3)):
            wave = (
                np.sin(2 * np.pi * (2 * x + y) + phase[0])
                + np.sin(2 * np.pi * (3 * y - x) + phase[1])
                + np.sin(2 * np.pi * 5 * x + phase[2]) * np.cos(2 * np.pi * 4 * y)
            )
            channels.append(wave)
        smooth = np.stack(channels, axis=-1) * 35 + 128
        block = 8
        detail = rng.normal(0, 18, size=(-(-height // block), -(-width // block), 3))
        detail = detail.repeat(block, axis=0).repeat(block, axis=1)[:height, :width]
        texture = np.clip(smooth + detail, 0, 255).astype(np.uint8)
        self._tiled = np.tile(texture, (2, 2, 1))
        self._box = max(8, height // 6)

    def render(self, frame_no: int, capture_ms: int) -> np.ndarray:
        """The stamped RGB ``(height, width, 3)`` uint8 frame number ``frame_no``."""
        h, w = self.height, self.width
        dx, dy = (frame_no * 4) % w, (frame_no * 2) % h
        frame = self._tiled[dy : dy + h, dx : dx + w].copy()
        box = self._box
        x = _bounce(frame_no * 7, w - box)
        y = _bounce(frame_no * 5, h - box)
        frame[y : y + box, x : x + box] = (240, 200, 40)
        stamp(frame, frame_no, capture_ms)
        return frame


def _bounce(position: int, span: int) -> int:
    """Triangle wave: ``position`` folded back and forth over ``0..span``."""
    phase = position % (2 * span)
    return phase if phase <= span else 2 * span - phase
