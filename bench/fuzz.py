"""A longer fuzzing campaign than the suite's, with its figures as JSON.

The same seeded generator and checks as ``tests/server/test_fuzz.py``: every
request type and stream kind, before and after login, and after each batch a
well-behaved client logs in and chats, nothing was logged at ERROR, and
connections, transfers and memory came back down. The run stops at the first
failed check and says which.

    python bench/fuzz.py --batches 40 --inputs 500 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the project on sys.path)

from server import ServerApp
from server.clock import ShiftedClock
from tests.conftest import server_config
from tests.server.fuzzer import campaign, populate


async def run(batches: int, inputs: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="quicmeet-fuzz-") as tmp:
        home = Path(tmp)
        app = ServerApp(server_config(home), clock=ShiftedClock())
        await app.start()
        started = time.monotonic()
        try:
            world, buddy = await populate(app, home)
            try:
                report = await campaign(
                    app, world, buddy, seed=seed, batches=batches, inputs=inputs
                )
                report["passed"] = True
            except AssertionError as exc:
                report = {"seed": seed, "passed": False, "failure": str(exc)}
            finally:
                await buddy.close()
        finally:
            await app.shutdown(grace=0.0)
        elapsed = time.monotonic() - started
        report["seconds"] = round(elapsed, 1)
        if report.get("inputs"):
            report["inputs_per_second"] = round(report["inputs"] / elapsed, 1)
        report["server_stats"] = {
            k: v
            for k, v in app.snapshot().items()
            if k in ("closed_for_abuse", "internal_errors", "connections_opened")
        }
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--inputs", type=int, default=500, help="inputs per batch")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.batches, args.inputs, args.seed))))


if __name__ == "__main__":
    main()
