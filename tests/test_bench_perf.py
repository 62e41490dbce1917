"""How ``bench/meeting.py --perf`` reads where a server's CPU went: the
groups of ``perf report --sort dso``."""

from __future__ import annotations

import shutil

import pytest

REPORT = """\
# To display the perf.data header info, please use --header/--header-only options.
#
# Total Lost Samples: 0
#
# Samples: 4K of event 'cpu-clock:ppp'
# Event count (approx.): 4023023019
#
# Overhead  Shared Object
# ........  ..........................................
#
    83.23%  libpython3.11.so.1.0
     5.82%  [kernel.kallsyms]
     5.47%  libc.so.6
     3.18%  _rust.abi3.so
     1.19%  loop.cpython-311-x86_64-linux-gnu.so
     0.40%  _heapq.cpython-311-x86_64-linux-gnu.so
     0.12%  [vdso]
     0.10%  ld-linux-x86-64.so.2
     0.07%  _asyncio.cpython-311-x86_64-linux-gnu.so


#
# (Cannot load tips.txt file, please install perf!)
#
"""


def test_a_report_is_grouped_into_interpreter_crypto_kernel_libc_and_loop(bench):
    shares = bench("_common").perf_shares(REPORT)
    assert shares == {
        "interpreter": 83.2,
        "crypto": 3.2,
        "kernel": 5.8,
        "libc": 5.6,  # libc and the dynamic loader
        "event_loop": 1.3,  # uvloop and asyncio's C module
        "other": 0.5,  # _heapq, the vDSO
    }


def test_a_report_without_samples_gives_zero_shares(bench):
    shares = bench("_common").perf_shares("# Samples: 0\n#\n\n")
    assert set(shares.values()) == {0.0}


def test_a_process_that_is_not_there_is_a_clear_error(bench):
    if shutil.which("perf") is None:
        with pytest.raises(RuntimeError, match="linux-perf"):
            bench("_common").PerfSampler(1, 0.1)
        return
    sampler = bench("_common").PerfSampler(2**22 + 1, 0.1)  # above pid_max
    with pytest.raises(RuntimeError, match="perf record failed"):
        sampler.result()
