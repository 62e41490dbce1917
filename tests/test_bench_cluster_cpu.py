"""``bench/cluster.py`` counts each process's CPU once: the load generator is
the parent of the nodes, PostgreSQL and Redis, and its cores must not include
theirs (they were counted twice, making the generator look 2-3 times as busy
as it was)."""

from __future__ import annotations

import os
import subprocess
import sys

_BURN = """
import resource, sys, time
while resource.getrusage(resource.RUSAGE_SELF).ru_utime < 0.3:
    pass
print("ready", flush=True)
time.sleep(30)
"""


def test_the_load_generator_s_cores_leave_its_children_out(bench):
    cluster = bench("cluster")  # bench/cluster.py
    process_cpu_seconds = bench("_common").process_cpu_seconds
    child = subprocess.Popen(
        [sys.executable, "-c", _BURN], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        me = os.getpid()
        own = process_cpu_seconds(me)
        with_child = cluster._tree_cpu_seconds(me)
        assert with_child - own >= 0.25  # the child's CPU, seen through /proc
        counted = cluster._cpu_seconds("load_generator", me)
        assert counted - own < 0.1
        # PostgreSQL's backends are its children: they count as PostgreSQL.
        assert cluster._cpu_seconds("postgresql", me) - own >= 0.25
    finally:
        child.kill()
        child.wait()
