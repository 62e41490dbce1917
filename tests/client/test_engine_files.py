"""The engine's file model: what the views are told of the files friends send."""

from client import Session
from client.engine.backend.files import FilesModel
from client.engine.model import Notice
from client.store import LocalStore
from codec.messages import FileInfo, FileOffered


async def test_an_offer_made_again_at_login_is_announced_once(tmp_path):
    # The server offers again, at every login, what still waits to be
    # downloaded; the user is told of each file once.
    posted = []
    store = LocalStore(tmp_path / "history.db")
    model = FilesModel(
        Session("127.0.0.1:9"), store, posted.append, tmp_path / "downloads"
    )
    offer = FileOffered(
        file=FileInfo(
            file_id="f1",
            sender="alice",
            recipient="bob",
            name="report.bin",
            size=300_000,
            sha256="0" * 64,
            state="ready",
            received=300_000,
        )
    )
    try:
        for _ in range(3):
            assert model.on_event(offer, lambda name: name)
        notices = [e for e in posted if isinstance(e, Notice)]
        assert len(notices) == 1
        assert "report.bin" in notices[0].text
    finally:
        store.close()
