"""File throughput and server CPU per MB across commits, against bare aioquic.

For each commit given, checks it out in a temporary git worktree (removed
after), puts this checkout's ``bench/`` into it (so every commit is measured
by the same benchmark), runs ``bench/files.py --size-mib N`` there, and keeps
its JSON. Writes all of them as one JSON object and one PNG: upload and
download MB/s of quicmeet and of bare aioquic (measured in the same run as
each commit; on uvloop, and on asyncio's own loop where the benchmark runs
both), the server's CPU per MB and the client's for both; ``--replot``
draws the PNG again from a saved JSON.

    python bench/throughput_history.py --png docs/throughput_history.png \\
        --size-mib 48 28cf857=before-udpio 30ace82=udpio f63a45c=mtu-search \\
        HEAD=window+pacer
    python bench/throughput_history.py --png out.png --replot out.json

Run it under the benchmark lock; each commit takes about a minute at 48 MiB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(commit: str, size_mib: int) -> dict:
    """Run this checkout's bench/files.py against ``commit``'s code."""
    with tempfile.TemporaryDirectory(prefix="quicmeet-history-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
            check=True,
            capture_output=True,
        )
        try:
            shutil.rmtree(tree / "bench")
            shutil.copytree(
                ROOT / "bench",
                tree / "bench",
                ignore=shutil.ignore_patterns("__pycache__"),
            )
            started = time.time()
            done = subprocess.run(
                [sys.executable, "bench/files.py", "--size-mib", str(size_mib)],
                cwd=tree,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{commit}: bench/files.py failed:\n{done.stderr}")
            result = json.loads(done.stdout)
            result["seconds"] = round(time.time() - started, 1)
            return result
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )


def load_average() -> float:
    """The machine's one-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def plot(rows: list[dict], path: Path) -> None:
    """One PNG: MB/s up and down, the server's CPU per MB, and the client's
    (the sending end of an upload, the receiving end of a download), per
    commit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["label"] for row in rows]
    x = range(len(rows))
    fig, (rate, cpu, client) = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = {"upload": "tab:blue", "download": "tab:green"}
    for key, marker in (("upload", "o"), ("download", "s")):
        ours = {"marker": marker, "color": colours[key]}
        bare = {"marker": marker, "color": colours[key], "alpha": 0.45}
        rate.plot(
            x,
            [row["quicmeet"][f"{key}_mb_s"] for row in rows],
            **ours,
            label=f"quicmeet {key}",
        )
        rate.plot(
            x,
            [row["bare_aioquic"][f"{key}_mb_s"] for row in rows],
            **bare,
            linestyle="--",
            label=f"bare aioquic {key}, uvloop (same run)",
        )
        if all("bare_aioquic_asyncio" in row for row in rows):
            rate.plot(
                x,
                [row["bare_aioquic_asyncio"][f"{key}_mb_s"] for row in rows],
                **bare,
                linestyle=":",
                label=f"bare aioquic {key}, asyncio's loop",
            )
        cpu.plot(
            x,
            [row["quicmeet"][f"{key}_cpu"]["server_cpu_ms_per_mb"] for row in rows],
            **ours,
            label=f"quicmeet {key}",
        )
        cpu.plot(
            x,
            [row["bare_aioquic"][f"{key}_cpu"]["server_cpu_ms_per_mb"] for row in rows],
            **bare,
            linestyle="--",
            label=f"bare aioquic {key}",
        )
        for source, style in (("quicmeet", ours), ("bare_aioquic", bare)):
            client.plot(
                x,
                [row[source][f"{key}_cpu"]["client_cpu_ms_per_mb"] for row in rows],
                **style,
                linestyle="-" if source == "quicmeet" else "--",
                label=f"{source.replace('_', ' ')} {key}",
            )
    rate.set_title("file transfer over loopback, MB/s")
    cpu.set_title("server CPU (user + system), ms per MB")
    client.set_title("client CPU (user + system), ms per MB")
    for axis in (rate, cpu, client):
        axis.set_xticks(list(x), labels, rotation=15)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    loads = ", ".join(f"{row['load_before']:.1f}" for row in rows)
    fig.suptitle(
        f"bench/files.py --size-mib {rows[0]['size_mib']} per commit "
        f"(load average before each: {loads})",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "commits", nargs="*", metavar="COMMIT=LABEL", help="commits in order"
    )
    parser.add_argument(
        "--replot",
        type=Path,
        help="draw the PNG from this earlier --json output instead of measuring",
    )
    parser.add_argument("--size-mib", type=int, default=48)
    parser.add_argument("--png", type=Path, required=True)
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if args.replot is not None:
        plot(json.loads(args.replot.read_text()), args.png)
        return
    if not args.commits:
        parser.error("give commits to measure, or --replot")
    rows = []
    for spec in args.commits:
        commit, _, label = spec.partition("=")
        sha = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", commit],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        load = load_average()
        result = measure(sha, args.size_mib)
        rows.append(
            {
                "commit": sha,
                "label": label or sha,
                "size_mib": args.size_mib,
                "load_before": load,
                **result,
            }
        )
        print(f"{sha} {label}: {result['ratios']}", file=sys.stderr, flush=True)
    plot(rows, args.png)
    text = json.dumps(rows, indent=1)
    if args.json is not None:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
