"""What encoding simulcast layers costs: CPU per captured frame for the top
layer alone and with the lower layers, as the capture thread does it
(``client/media/simulcast.py``: one encoder per layer, each scaling the
captured picture).

    python bench/simulcast_cpu.py [--frames 150] [--size 1280x720]

Prints JSON: per layer set, the CPU time per frame (process time, median and
p95, milliseconds) and the share of one core at the source's frame rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from client.media.sender import default_bitrate_bps
from codec.media.simulcast import spatial_layers
from codec.media.stamp import SyntheticPattern
from codec.media.video import VideoEncoder

FPS = 30.0


def measure(width: int, height: int, layer_count: int, frames: int) -> dict:
    """Encode ``frames`` pictures into the top ``layer_count`` layers."""
    layers = spatial_layers(width, height)[-layer_count:]
    encoders = [
        VideoEncoder(
            layer.width,
            layer.height,
            FPS,
            default_bitrate_bps(layer.width, layer.height, FPS, "camera"),
        )
        for layer in layers
    ]
    pattern = SyntheticPattern(width, height)
    pictures = [pattern.render(n, n * 33) for n in range(frames)]
    costs = []
    for n, picture in enumerate(pictures):
        started = time.process_time()
        for encoder in encoders:
            encoder.encode(picture, n / FPS)
        costs.append((time.process_time() - started) * 1000)
    costs = costs[10:]  # the encoders' start
    return {
        "layers": [f"{layer.width}x{layer.height}" for layer in layers],
        "cpu_ms_per_frame_p50": round(statistics.median(costs), 2),
        "cpu_ms_per_frame_p95": round(statistics.quantiles(costs, n=20)[-1], 2),
        "core_share_at_30fps": round(statistics.mean(costs) * FPS / 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    count = len(spatial_layers(width, height))
    runs = [measure(width, height, n, args.frames) for n in range(1, count + 1)]
    print(json.dumps({"size": args.size, "fps": FPS, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
