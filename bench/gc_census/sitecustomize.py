"""What each full collection of a process walks: a census for diagnosis.

Put this directory on ``PYTHONPATH`` and name a directory in ``GC_CENSUS``;
every Python process started so (a node and the load generators
``bench/load.py`` starts inherit both) then appends one JSON line per full
collection (the collector's oldest generation) to ``<GC_CENSUS>/<pid>.jsonl``:
how many objects that generation held when the pass began (``n``: what the
pass walks; frozen objects are not among them), the 25 most common types
among them, the frozen objects, the younger generations' sizes, the pass's
own CPU (``ms``, the collecting thread's, the census itself left out), what
it freed, the time and the process's command line. The census walks the
generation once more before each pass, so the process's pauses grow while
it runs: for what a pass walks, not for how long a pause lasts.

    PYTHONPATH=bench/gc_census GC_CENSUS=/tmp/census python bench/load.py ...
"""

import collections
import gc
import json
import os
import sys
import time

_DIRECTORY = os.environ.get("GC_CENSUS")


def _census(phase: str, info: dict) -> None:
    if info.get("generation") != 2:
        return
    if phase == "start":
        objects = gc.get_objects(2)
        types = collections.Counter(type(o).__qualname__ for o in objects)
        _state.update(
            n=len(objects),
            types=types.most_common(25),
            frozen=gc.get_freeze_count(),
            young=[len(gc.get_objects(0)), len(gc.get_objects(1))],
            argv=" ".join(sys.argv[:4]),
        )
        del objects
        _state["started"] = time.thread_time()
    elif "started" in _state:
        ms = (time.thread_time() - _state.pop("started")) * 1000
        line = dict(_state, ms=round(ms, 1), collected=info.get("collected"))
        line["at"] = time.time()
        with open(os.path.join(_DIRECTORY or ".", f"{os.getpid()}.jsonl"), "a") as f:
            f.write(json.dumps(line) + "\n")


_state: dict = {}
if _DIRECTORY:
    os.makedirs(_DIRECTORY, exist_ok=True)
    gc.callbacks.insert(0, _census)
