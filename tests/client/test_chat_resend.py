"""A message sent again under the client id it was first sent with (as the
desktop app does after its engine died before confirming it) is stored once
and delivered once."""

from __future__ import annotations

from tests.conftest import befriend, eventually


async def test_the_same_client_id_twice_is_one_message(member) -> None:
    ann, ben = await member("ann"), await member("ben")
    await befriend(ann, ben)
    first = await ann.chat.send("ben", "only once", "c-0001")
    again = await ann.chat.send("ben", "only once", "c-0001")
    assert (first.id, first.state) == (again.id, "sent")
    assert [m.text for m in ann.store.history("ben")] == ["only once"]
    await ann.chat.send("ben", "the next one")

    def received() -> list[str]:
        return [m.text for m in ben.store.history("ann") if not m.outgoing]

    await eventually(lambda: received() == ["only once", "the next one"])
