"""``bench/gc_census``: a process started with it on its path counts what
each full collection walks (a real interpreter, a real collection)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CENSUS = Path(__file__).resolve().parents[1] / "bench" / "gc_census"

SCRIPT = """
import gc
class Node:
    def __init__(self):
        self.me = self
keep = [Node() for _ in range(5000)]
gc.collect()
gc.collect()
"""


def test_each_full_pass_is_counted_by_type(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(CENSUS), "GC_CENSUS": str(tmp_path)}
    subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, timeout=60)
    (written,) = tmp_path.glob("*.jsonl")
    lines = [json.loads(line) for line in written.read_text().splitlines()]
    assert len(lines) >= 2
    last = lines[-1]
    # the kept objects survived into the oldest generation and were walked
    assert last["n"] >= 5000
    assert dict(last["types"])["Node"] == 5000
    assert last["ms"] >= 0 and last["collected"] == 0


def test_without_the_variable_nothing_is_written(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(CENSUS)}
    env.pop("GC_CENSUS", None)
    subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, check=True, timeout=60, cwd=tmp_path
    )
    assert not list(tmp_path.glob("*.jsonl"))
