"""A short seeded fuzzing campaign against a real server over real QUIC.

Every request type and every stream kind, before and after login; after each
batch the server must be alive, a well-behaved client must log in and chat,
nothing may be logged at ERROR, and connections, transfers and memory must come
back down. ``bench/fuzz.py`` runs the same campaign for longer.
"""

from server import ServerApp
from server.clock import ShiftedClock
from tests.conftest import server_config

from .fuzzer import campaign, populate


async def test_fuzzed_input_leaves_the_server_well(tmp_path):
    app = ServerApp(server_config(tmp_path), clock=ShiftedClock())
    await app.start()
    try:
        world, buddy = await populate(app, tmp_path)
        try:
            report = await campaign(
                app, world, buddy, seed=20261201, batches=8, inputs=250
            )
        finally:
            await buddy.close()
    finally:
        await app.shutdown(grace=0.0)
    kinds = report["inputs_by_kind"]
    for kind in ("control", "upload", "avatar", "download", "unidirectional"):
        assert kinds.get(kind, 0) > 0, kinds
    assert report["logged_in_batches"] > 0
