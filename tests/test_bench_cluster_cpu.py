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


def test_a_phase_reports_each_loop_s_wait_for_a_cpu(bench):
    """Besides the cores each process kept busy, a phase reports how long the
    nodes' and the generator's loop threads were runnable without a CPU (a
    share of the phase: 0 on an idle machine, up to 1)."""
    cluster = bench("cluster")
    me = os.getpid()
    names = ("node_a", "node_b", "postgresql", "redis", "load_generator")
    process_cpu_seconds = bench("_common").process_cpu_seconds
    shares = cluster.CpuShares(dict.fromkeys(names, me))
    start = process_cpu_seconds(me)
    while process_cpu_seconds(me) - start < 0.05:  # some CPU of its own
        pass
    busy, waited = shares.finish()
    assert set(busy) == {*names, "total"} and busy["load_generator"] > 0
    assert set(waited) == {"node_a", "node_b", "load_generator"}
    assert all(0 <= share <= 1 for share in waited.values())
