"""Generated hostile input for the fuzzer (:mod:`tests.server.fuzzer`).

For each request type: fields of the right type with plausible values (real
user names, file and room ids), of the wrong type, missing or extra, and
request ids out of range; and msgpack that is nested, truncated or not a map,
and frames over the limit. The same random generator gives the same input.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from typing import Any

import msgspec

from codec.messages import REQUESTS, STREAM_REQUESTS
from codec.protocol import message_tag

_TYPE_INFO = {cls: msgspec.inspect.type_info(cls) for cls in REQUESTS + STREAM_REQUESTS}


@dataclass
class World:
    """What exists on the server, so that plausible values reach deep code."""

    users: list[str]
    file_ids: list[str] = field(default_factory=list)
    room_ids: list[str] = field(default_factory=list)


def _nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"


def wrong_value(rng: random.Random) -> Any:
    """A value of a type or range no field expects."""
    choices: list[Any] = [
        None,
        True,
        -1,
        2**53 + 1,
        2**64 - 1,
        -(2**63),
        1.5,
        float("nan"),
        "",
        "x" * rng.choice([1, 100, 5000, 70_000]),
        "\x00\u202e\ud7ff",
        b"\xff" * rng.randint(0, 300),
        [],
        [1, [2, [3]]],
        {"a": 1},
        {"type": "Login", "rid": 1},
        msgspec.msgpack.Ext(5, b"ext"),
    ]
    return rng.choice(choices)


def plausible(rng: random.Random, info: Any, name: str, world: World) -> Any:
    """A value of the field's type, often one the server knows."""
    if isinstance(info, msgspec.inspect.UnionType):
        return plausible(rng, rng.choice(info.types), name, world)
    if isinstance(info, msgspec.inspect.StrType):
        pool = [
            rng.choice(world.users),
            "nobody",
            "a" * rng.randint(0, 40),
            "ünï çødé",
        ]
        if world.file_ids:
            pool.append(rng.choice(world.file_ids))
        if world.room_ids:
            pool.append(rng.choice(world.room_ids))
        if "password" in name:
            pool.append("wrong password")
        if "sha256" in name:
            pool.append("ab" * 32)
        return rng.choice(pool)
    if isinstance(info, msgspec.inspect.IntType):
        return rng.choice([0, 1, 2, 7, 1000, 2**20, 2**31, 2**40, 2**53])
    if isinstance(info, msgspec.inspect.FloatType):
        return rng.choice([0.0, 0.5, 1e9])
    if isinstance(info, msgspec.inspect.BoolType):
        return rng.random() < 0.5
    if isinstance(info, msgspec.inspect.BytesType):
        return rng.randbytes(rng.choice([0, 16, 32, 64]))
    if isinstance(info, msgspec.inspect.NoneType):
        return None
    if isinstance(info, msgspec.inspect.ListType):
        return [
            plausible(rng, info.item_type, name, world)
            for _ in range(rng.randint(0, 3))
        ]
    if isinstance(info, msgspec.inspect.DictType):
        return {
            plausible(rng, info.key_type, name, world): plausible(
                rng, info.value_type, name, world
            )
            for _ in range(rng.randint(0, 3))
        }
    if isinstance(info, msgspec.inspect.LiteralType):
        return rng.choice(info.values)
    if isinstance(info, msgspec.inspect.StructType):
        return {
            f.encode_name: plausible(rng, f.type, f.name, world) for f in info.fields
        }
    return wrong_value(rng)


def request_map(rng: random.Random, cls: type, world: World) -> dict[str, Any]:
    """A request of type ``cls`` with each field right, wrong or missing."""
    message: dict[str, Any] = {"type": message_tag(cls)}
    for f in _TYPE_INFO[cls].fields:
        roll = rng.random()
        if f.name == "rid":
            message["rid"] = rng.randint(0, 10_000) if roll < 0.9 else wrong_value(rng)
        elif roll < 0.65:
            message[f.encode_name] = plausible(rng, f.type, f.name, world)
        elif roll < 0.9:
            message[f.encode_name] = wrong_value(rng)
    if rng.random() < 0.1:
        message[rng.choice(["extra", "type2", ""])] = wrong_value(rng)
    return message


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def control_input(rng: random.Random, world: World) -> bytes:
    """One control-stream input: mostly a fuzzed request, sometimes garbage."""
    roll = rng.random()
    if roll < 0.8:
        return frame(
            msgspec.msgpack.encode(request_map(rng, rng.choice(REQUESTS), world))
        )
    if roll < 0.85:
        return frame(_nested(rng.choice([100, 1000, 5000])))
    if roll < 0.9:
        return frame(rng.randbytes(rng.randint(0, 200)))
    if roll < 0.95:
        return frame(msgspec.msgpack.encode(wrong_value(rng)))
    # An oversized frame (skipped whole by the server).
    return struct.pack(">I", 70_000) + rng.randbytes(70_000)


def stream_request(rng: random.Random, cls: type, world: World) -> bytes:
    roll = rng.random()
    if roll < 0.85:
        return frame(msgspec.msgpack.encode(request_map(rng, cls, world)))
    if roll < 0.9:
        return frame(_nested(1000))
    if roll < 0.95:
        return struct.pack(">I", rng.choice([5000, 60_000, 2**31]))
    return rng.randbytes(rng.randint(0, 50))
