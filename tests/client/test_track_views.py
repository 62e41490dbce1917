"""How large each remote track is shown, told to the server: a default
view at once for each new track, a tile's resizes once they settle."""

from __future__ import annotations

import asyncio

import pytest

from client.errors import ServerError
from client.media.views import DEBOUNCE_S, TrackViews


class FakeRooms:
    def __init__(self) -> None:
        self.told: list[tuple[int, int, int]] = []
        self.refuse: set[int] = set()

    async def view_track(self, track_id: int, width: int, height: int) -> None:
        self.told.append((track_id, width, height))
        if track_id in self.refuse:
            raise ServerError(404, "no video track with this id in your room")


def views(rooms: FakeRooms, default: tuple[int, int] | None) -> TrackViews:
    loop = asyncio.get_running_loop()
    return TrackViews(rooms, loop, lambda coro: loop.create_task(coro), default)


async def test_a_default_view_is_told_at_once_for_each_new_track():
    rooms = FakeRooms()
    tracks = views(rooms, (320, 240))
    tracks.sync([5, 6])
    tracks.sync([5, 6])  # nothing new: nothing more to say
    await asyncio.sleep(0)
    assert sorted(rooms.told) == [(5, 320, 240), (6, 320, 240)]
    # A track gone is forgotten; one that comes back is told again.
    tracks.sync([6])
    tracks.sync([5, 6])
    await asyncio.sleep(0)
    assert rooms.told[-1] == (5, 320, 240) and len(rooms.told) == 3


async def test_no_default_says_nothing_until_a_tile_is_sized():
    rooms = FakeRooms()
    tracks = views(rooms, None)
    tracks.sync([5])
    await asyncio.sleep(DEBOUNCE_S * 1.5)
    assert rooms.told == []


async def test_a_resized_tile_is_told_once_it_settles():
    rooms = FakeRooms()
    tracks = views(rooms, None)
    tracks.sync([5])
    for width in range(300, 340, 4):  # a window's edge being dragged
        tracks.set(5, width, width * 3 // 4)
        await asyncio.sleep(0)
    assert rooms.told == []
    await asyncio.sleep(DEBOUNCE_S * 1.5)
    assert rooms.told == [(5, 336, 252)]
    # The same size again says nothing; a refused view is logged, not raised.
    tracks.set(5, 336, 252)
    await asyncio.sleep(DEBOUNCE_S * 1.5)
    assert rooms.told == [(5, 336, 252)]
    rooms.refuse.add(5)
    tracks.set(5, 0, 0)
    await asyncio.sleep(DEBOUNCE_S * 1.5)
    assert rooms.told[-1] == (5, 0, 0)
    tracks.close()


def test_bad_sizes_are_refused_here():
    with pytest.raises(ValueError):
        TrackViews(FakeRooms(), None, lambda coro: None, (0, 240))  # type: ignore[arg-type]


async def test_bad_tile_sizes_are_refused_here():
    tracks = views(FakeRooms(), None)
    for width, height in ((0, 240), (-2, 240), (320, 0)):
        with pytest.raises(ValueError):
            tracks.set(5, width, height)
