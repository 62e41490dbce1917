import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import (
    ErrorCode,
    LocalProtocolError,
    MessageError,
    decode_request,
    decode_server_message,
    decode_stream_request,
    encode_message,
)
from codec.messages import (
    EVENTS,
    REPLIES,
    REQUESTS,
    STREAM_REQUESTS,
    Error,
    Login,
    Ok,
    Profile,
    PutAvatar,
    UserPage,
)
from codec.protocol import message_tag

ALL = REQUESTS + STREAM_REQUESTS + REPLIES + EVENTS


def body(frame: bytes) -> bytes:
    return frame[4:]


def test_golden_login_frame():
    frame = encode_message(Login(rid=7, username="alice", password="pw"))
    assert frame == (
        b"\x00\x00\x00\x2c\x84\xa4type\xa5Login\xa3rid\x07"
        b"\xa8username\xa5alice\xa8password\xa2pw"
    )


def test_tags_are_class_names_and_unique():
    tags = [message_tag(cls) for cls in ALL]
    assert tags == [cls.__name__ for cls in ALL]
    assert len(set(tags)) == len(tags)


def test_requests_are_not_accepted_by_the_client_decoder():
    frame = body(encode_message(Login(rid=1, username="a", password="b")))
    with pytest.raises(MessageError) as info:
        decode_server_message(frame)
    assert info.value.code == ErrorCode.UNEXPECTED_MESSAGE
    assert info.value.rid == 1


def test_replies_are_not_accepted_as_requests():
    with pytest.raises(MessageError) as info:
        decode_request(body(encode_message(Ok(rid=5))))
    assert info.value.code == ErrorCode.UNEXPECTED_MESSAGE
    assert info.value.rid == 5


def test_stream_request_only_on_streams():
    frame = body(encode_message(PutAvatar(rid=2, size=10)))
    assert decode_stream_request(frame) == PutAvatar(rid=2, size=10)
    with pytest.raises(MessageError) as info:
        decode_request(frame)
    assert info.value.code == ErrorCode.UNEXPECTED_MESSAGE


@pytest.mark.parametrize(
    ("raw", "code", "rid", "text"),
    [
        (b"\xc1", ErrorCode.BAD_FRAME, None, "not valid msgpack"),
        (b"\x93\x01", ErrorCode.BAD_FRAME, None, "truncated"),
        (msgspec.msgpack.encode([1, 2]), ErrorCode.INVALID_MESSAGE, None, "map"),
        (msgspec.msgpack.encode({"rid": 3}), ErrorCode.INVALID_MESSAGE, 3, "type"),
        (
            msgspec.msgpack.encode({"type": "Nope", "rid": 4}),
            ErrorCode.UNKNOWN_TYPE,
            4,
            "Nope",
        ),
        (
            msgspec.msgpack.encode(
                {"type": "Login", "rid": 5, "username": 1, "password": "x"}
            ),
            ErrorCode.INVALID_MESSAGE,
            5,
            "$.username",
        ),
        (
            msgspec.msgpack.encode(
                {"type": "Login", "rid": 6, "username": "u" * 65, "password": "x"}
            ),
            ErrorCode.INVALID_MESSAGE,
            6,
            "length <= 64",
        ),
        (
            msgspec.msgpack.encode({"type": "Login", "rid": -1}),
            ErrorCode.INVALID_MESSAGE,
            None,
            "rid",
        ),
    ],
)
def test_bad_frames_give_typed_errors(raw, code, rid, text):
    with pytest.raises(MessageError) as info:
        decode_request(raw)
    assert info.value.code == code
    assert info.value.rid == rid
    assert text in info.value.message


def test_encoding_a_message_over_the_frame_limit_is_refused():
    page = UserPage(
        rid=1,
        users=[Profile(username="u" * 32, display_name="d" * 64)] * 1000,
    )
    with pytest.raises(LocalProtocolError) as info:
        encode_message(page)
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE


def _strategy_for(cls):
    return st.builds(
        cls,
        **{
            f.name: _field_strategy(f.type)
            for f in msgspec.inspect.type_info(cls).fields
            if f.required
        },
    )


def _field_strategy(t):
    mi = msgspec.inspect
    if isinstance(t, mi.UnionType):
        return st.one_of(*[_field_strategy(x) for x in t.types])
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.IntType):
        lo = t.ge if t.ge is not None else -(2**63)
        hi = t.le if t.le is not None else 2**63 - 1
        return st.integers(lo, hi)
    if isinstance(t, mi.StrType):
        low = t.min_length or 0
        high = max(low, min(t.max_length or 50, 50))
        if t.pattern == "^[0-9a-f]+$":
            return st.text("0123456789abcdef", min_size=max(low, 1), max_size=high)
        assert t.pattern is None, f"no strategy for pattern {t.pattern}"
        return st.text(min_size=low, max_size=high)
    if isinstance(t, mi.BytesType):
        return st.binary(min_size=t.min_length or 0, max_size=t.max_length or 50)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.FloatType):
        lo = t.ge if t.ge is not None else -1e300
        hi = t.le if t.le is not None else 1e300
        return st.floats(lo, hi, allow_nan=False)
    if isinstance(t, mi.ListType):
        return st.lists(_field_strategy(t.item_type), max_size=3)
    if isinstance(t, mi.StructType):
        return _strategy_for(t.cls)
    raise AssertionError(f"no strategy for {t}")


@settings(max_examples=30, deadline=None)
@given(st.one_of(*[_strategy_for(cls) for cls in REQUESTS]))
def test_requests_round_trip(message):
    assert decode_request(body(encode_message(message))) == message


@settings(max_examples=30, deadline=None)
@given(st.one_of(*[_strategy_for(cls) for cls in REPLIES + EVENTS]))
def test_server_messages_round_trip(message):
    assert decode_server_message(body(encode_message(message))) == message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_message_errors(data):
    for decode in (decode_request, decode_server_message, decode_stream_request):
        try:
            decode(data)
        except MessageError as exc:
            assert isinstance(exc.code, ErrorCode)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["type", "rid", "username", "password", "token", "x"]),
        st.one_of(
            st.sampled_from([c.__name__ for c in ALL]),
            st.integers(-(2**63), 2**64 - 1),
            st.text(max_size=5),
            st.binary(max_size=40),
            st.none(),
        ),
    )
)
def test_maps_with_wrong_shapes_raise_only_message_errors(mapping):
    data = msgspec.msgpack.encode(mapping)
    try:
        decode_request(data)
    except MessageError:
        pass


def test_error_reply_keeps_retry_after():
    err = Error(rid=9, code=400, message="slow down", retry_after_ms=250)
    assert decode_server_message(body(encode_message(err))) == err


@pytest.mark.parametrize("nesting", [b"\x91", b"\x81\xa1a"])
def test_deeply_nested_msgpack_is_a_bad_frame(nesting):
    """About 1,000 levels of arrays or maps overflow msgspec's recursion limit;
    that must come out as the decoder's own error, not a RecursionError."""
    for decode in (decode_request, decode_stream_request, decode_server_message):
        with pytest.raises(MessageError) as info:
            decode(nesting * 1000 + b"\xc0")
        assert info.value.code == ErrorCode.BAD_FRAME
        assert "nested" in info.value.message


@pytest.mark.parametrize("rid", [2**53 + 1, 2**63, 2**64 - 1, -1])
def test_a_request_id_out_of_range_is_not_echoed(rid):
    """A reply may carry only a rid the client can decode (0 .. 2**53)."""
    frame = msgspec.msgpack.encode({"type": "GetProfile", "rid": rid})
    with pytest.raises(MessageError) as info:
        decode_request(frame)
    assert info.value.code == ErrorCode.INVALID_MESSAGE
    assert info.value.rid is None
    error = Error(rid=info.value.rid, code=int(info.value.code), message="x")
    assert decode_server_message(body(encode_message(error))) == error
