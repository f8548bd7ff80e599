"""What `--model auto` costs: the source measurement beside the job it decides, in one run.

    .venv/bin/python bench/auto_overhead.py [--input samples/sample.mp4] [--rounds 3] \
        [--out bench/results/auto_overhead.json]

Times `vsr.choose_model` (open, 6 seeks, 8 frames decoded and measured per window, the choice) and the
whole `vsr.upscale` with the chain it chose (x264 ultrafast, so the model dominates), best of --rounds
each, and reports the measurement's share of the job.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vsr  # noqa: E402


def best_of(rounds: int, run: object) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=ROOT / "samples" / "sample.mp4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "auto_overhead.json")
    args = parser.parse_args()
    decision = vsr.choose_model(args.input)
    measure_s = best_of(args.rounds, lambda: vsr.choose_model(args.input))
    fast = vsr.EncodeSettings(preset="ultrafast")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "o.mkv"
        job_s = best_of(
            args.rounds,
            lambda: vsr.upscale(
                args.input, out, model=decision.model, denoise=decision.denoise, encode=fast, overwrite=True
            ),
        )
    result = {
        "input": str(args.input.relative_to(ROOT) if args.input.is_relative_to(ROOT) else args.input),
        "measured": decision.measured.to_dict(),
        "chain": decision.chain,
        "reason": decision.reason,
        "measure_s": round(measure_s, 3),
        "job_s": round(job_s, 3),
        "measure_share_of_job": round(measure_s / job_s, 4),
        "rounds": args.rounds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
