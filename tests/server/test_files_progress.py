"""Progress of a transfer is reported as its bytes move, however fast the
path: a progress bar, a pause at a mark, a resume test's kill at a mark all
wait for these reports."""

import os
from itertools import pairwise

from client.transfers import Transfers
from client.transfers.job import WINDOW
from tests.conftest import befriend

MiB = 1024 * 1024


async def test_an_upload_the_server_keeps_up_with_reports_its_progress(
    member, tmp_path
):
    a = await member("gus")
    b = await member("hal")
    await befriend(a, b)
    size = 24 * MiB
    source = tmp_path / "archive.bin"
    source.write_bytes(os.urandom(size))
    up = Transfers(a.session, a.store, tmp_path / "downloads-gus")
    reported = []
    up.on_progress = lambda p: None if p.checking else reported.append(p.done)

    sent = await up.send("hal", source)

    assert sent.state == "done"
    assert reported[-1] == size
    assert reported == sorted(reported)
    # The server confirms what it wrote every 128 KiB and the client sends at
    # most WINDOW ahead of that: a report at least every two windows, even
    # when the window never fills (a fast path used to report nothing until
    # the upload had ended).
    marks = [0, *reported]
    gaps = [after - before for before, after in pairwise(marks)]
    assert max(gaps) <= 2 * WINDOW, gaps
