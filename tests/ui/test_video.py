"""Pictures for the video tiles: scaling to the tile (letterboxed) and the
newest-picture-only hand-over through shared memory, from the engine's
producing threads (:class:`TileFrames`) to the Tk side (:class:`TileBuffers`).
Both ends run in this process here; the buffers are real shared memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from multiprocessing import resource_tracker

import numpy as np
import pytest

from client.engine.frames import TileFrames
from client.engine.frames import fit as fit_into
from client.engine.messages import DropTile, ShowTile
from client.ui.video import TileBuffers, TilePicture


class Tiles:
    """The engine's writer and the UI's buffers, wired as the channel would."""

    def __init__(self) -> None:
        self.writer = TileFrames()
        self.buffers = TileBuffers(self._send)

    def _send(self, command: ShowTile | DropTile) -> None:
        if isinstance(command, ShowTile):
            self.writer.attach(
                command.key, command.buffer, (command.width, command.height)
            )
            # Attaching gave up this process's tracking of the buffer (right
            # for the engine, a process of its own); the creator is here too.
            resource_tracker.register(f"/{command.buffer}", "shared_memory")
        elif isinstance(command, DropTile):
            self.writer.drop(command.key)

    def set_size(self, key: str, size: tuple[int, int]) -> None:
        self.buffers.set_size(key, size)

    def drop(self, key: str) -> None:
        self.buffers.drop(key)

    def put(self, key: str, frame: np.ndarray, number: int) -> None:
        self.writer.put(key, frame, number)

    def take(self, key: str) -> TilePicture | None:
        return self.buffers.take(key)

    @property
    def replaced(self) -> int:
        return self.buffers.replaced

    def close(self) -> None:
        self.writer.close()
        self.buffers.close()


@pytest.fixture
def frames() -> Iterator[Tiles]:
    tiles = Tiles()
    yield tiles
    tiles.close()


def fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The whole tile ``fit_into`` makes: the picture placed on black."""
    picture, left, top = fit_into(frame, size)
    tile = np.zeros((size[1], size[0], 3), np.uint8)
    tile[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
    return tile


def solid(width: int, height: int, rgb: tuple[int, int, int]) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:] = rgb
    return frame


def test_fit_letterboxes_a_wider_picture_into_its_tile() -> None:
    tile = np.asarray(fit(solid(640, 480, (200, 40, 10)), (400, 400)))
    assert tile.shape == (400, 400, 3)
    # 640x480 scaled to 400x300, centred: black bands of 50 rows above and below.
    assert (tile[:50] == 0).all() and (tile[350:] == 0).all()
    assert (tile[50:350] == (200, 40, 10)).all()


def test_fit_keeps_an_exact_size_and_shrinks_far_without_losing_the_colour() -> None:
    frame = solid(640, 480, (10, 200, 90))
    same = fit(frame, (640, 480))
    assert same.shape == (480, 640, 3)
    assert (same == frame).all()
    small = np.asarray(fit(frame, (160, 120)))  # by pixel area (a quarter)
    assert small.shape == (120, 160, 3) and (small == (10, 200, 90)).all()
    large = np.asarray(fit(frame, (1280, 960)))
    assert large.shape == (960, 1280, 3) and (large == (10, 200, 90)).all()


def test_tile_frames_keep_only_the_newest_picture_and_count_the_skipped(
    frames: Tiles,
) -> None:
    frames.put("nobody", solid(64, 48, (1, 2, 3)), 0)
    assert frames.take("nobody") is None  # no tile of that key: dropped
    frames.set_size("track:1", (32, 24))
    for number in range(3):
        frames.put("track:1", solid(64, 48, (number, 0, 0)), number)
    picture = frames.take("track:1")
    assert picture is not None
    assert picture.frame_number == 2 and picture.image.size == (32, 24)
    assert (picture.source_width, picture.source_height) == (64, 48)
    assert frames.replaced == 2
    assert frames.take("track:1") is None  # nothing new since


def test_a_new_tile_size_discards_pictures_made_for_the_old_one(
    frames: Tiles,
) -> None:
    frames.set_size("k", (32, 24))
    frames.put("k", solid(64, 48, (9, 9, 9)), 1)
    frames.set_size("k", (64, 48))
    assert frames.take("k") is None
    frames.put("k", solid(64, 48, (9, 9, 9)), 2)
    picture = frames.take("k")
    assert picture is not None and picture.image.size == (64, 48)
    frames.drop("k")
    frames.put("k", solid(64, 48, (9, 9, 9)), 3)
    assert frames.take("k") is None


def test_a_buffer_the_window_already_replaced_is_skipped_quietly() -> None:
    engine = TileFrames()
    assert engine.attach("k", "psm_gone_before_the_engine_read_it", (32, 24)) is False
    engine.put("k", solid(64, 48, (1, 2, 3)), 0)  # no tile: nothing written
    engine.close()


def test_producers_on_several_threads_never_hand_over_a_torn_picture(
    frames: Tiles,
) -> None:
    frames.set_size("k", (80, 60))
    stop = threading.Event()

    def produce(value: int) -> None:
        number = 0
        while not stop.is_set():
            frames.put("k", solid(160, 120, (value, value, value)), number)
            number += 1

    threads = [threading.Thread(target=produce, args=(v,)) for v in (50, 150)]
    for thread in threads:
        thread.start()
    taken = 0
    try:
        while taken < 60:
            picture = frames.take("k")
            if picture is None:
                continue
            pixels = np.asarray(picture.image)
            assert pixels.shape == (60, 80, 3)
            assert len(np.unique(pixels)) == 1 and pixels[0, 0, 0] in (50, 150)
            taken += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
