"""Fixtures for the media-plane tests: golden files and a shared encoded clip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "media"


@pytest.fixture
def golden() -> Callable[[str], bytes]:
    """Reads a golden binary file from ``tests/fixtures/media``."""
    return lambda name: (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Clip:
    """A synthetic clip encoded once per session: frames, access units, stamps."""

    width: int
    height: int
    fps: int
    images: list[np.ndarray]
    access_units: list[bytes]
    keyframes: list[bool]

    def capture_ms(self, frame_no: int) -> int:
        return 1_000 + frame_no * 1_000 // self.fps


@pytest.fixture(scope="session")
def clip() -> Clip:
    """60 frames of 320x240 at 30 fps and 300 kbit/s; only frame 0 is a keyframe."""
    from codec.media.stamp import SyntheticPattern
    from codec.media.video import VideoEncoder

    width, height, fps = 320, 240, 30
    pattern = SyntheticPattern(width, height)
    encoder = VideoEncoder(width, height, fps, 300_000)
    images, units, keys = [], [], []
    for n in range(60):
        image = pattern.render(n, 1_000 + n * 1_000 // fps)
        (encoded,) = encoder.encode(image, now=n / fps)
        images.append(image)
        units.append(encoded.data)
        keys.append(encoded.keyframe)
    return Clip(width, height, fps, images, units, keys)
