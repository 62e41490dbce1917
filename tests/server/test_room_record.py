"""A room's record, as another node takes the meeting over from it: pure, no
network (the takeover between real nodes is in test_cluster.py)."""

from __future__ import annotations

import msgspec
import pytest

from server.room_state import Member, Room, decode_record, encode_record


def member(user_id: int) -> Member:
    return Member(
        user_id=user_id,
        username=f"user{user_id}",
        display_name="",
        session_id=user_id,
        conn=None,  # type: ignore[arg-type]
        joined_ms=0,
    )


def running_room() -> Room:
    room = Room("abc-def-ghij", owner_id=1, max_members=8, password="open sesame")
    for user_id in (1, 2, 3):
        room.add(member(user_id))
    room.transfer_host(2)
    room.locked = True
    room.banned.add(9)
    room.chat_seq = 41
    return room


def test_a_record_round_trips_and_the_copy_keeps_the_rules():
    room = running_room()
    copy = Room.from_record(room.room_id, decode_record(encode_record(room.record())))
    assert copy.members == {} and copy.host_id is None
    assert copy.owner_id == 1 and copy.max_members == 8
    assert copy.locked and copy.banned == {9} and copy.chat_seq == 41
    assert copy.password_matches("open sesame")
    assert not copy.password_matches("a guess") and not copy.password_matches(None)
    assert copy.returning == {1, 2, 3}
    # Members take its states as newer than any the old node sent.
    assert copy.version > room.version


def test_the_old_host_takes_the_role_back_whoever_came_first():
    room = running_room()
    copy = Room.from_record(room.room_id, room.record())
    copy.add(member(3))
    assert copy.host_id == 3  # someone holds the role meanwhile
    assert copy.record().host_id == 2  # and the record still names the host
    copy.add(member(2))
    assert copy.host_id == 2
    assert copy.returning == {1}
    copy.add(member(1))
    assert copy.host_id == 2 and copy.returning == set()


def test_a_host_chosen_meanwhile_stays_host():
    room = running_room()
    copy = Room.from_record(room.room_id, room.record())
    copy.add(member(3))
    copy.transfer_host(3)
    copy.add(member(2))
    assert copy.host_id == 3


def test_the_record_lists_seats_in_join_order_then_those_not_back():
    room = running_room()
    copy = Room.from_record(room.room_id, room.record())
    copy.add(member(3))
    assert copy.record().seated == [3, 1, 2]


def test_a_garbled_record_is_refused():
    with pytest.raises(msgspec.DecodeError):
        decode_record(b"\x93\x01\x02")
