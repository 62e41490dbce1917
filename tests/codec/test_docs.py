from pathlib import Path

from codec.docgen import render_reference, update_document
from codec.messages import EVENTS, REPLIES, REQUESTS, STREAM_REQUESTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_protocol_document_matches_the_structs():
    text = DOC.read_text()
    assert update_document(text) == text, (
        "docs/protocol.md is out of date: run python -m codec.docgen docs/protocol.md"
    )


def test_every_message_is_documented():
    reference = render_reference()
    for cls in REQUESTS + STREAM_REQUESTS + REPLIES + EVENTS:
        assert f"### `{cls.__name__}`" in reference
