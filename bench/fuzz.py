"""Fuzzing the bad-input contract: valid files with bytes flipped at random offsets, each through a real
`vsr upscale` process, with a tally of what happened.

    .venv/bin/python bench/fuzz.py [--variants 200] [--seed 0] [--jobs 2] [--out bench/results/fuzz.json]

The contract (../shared/docs/BAD-INPUTS.md): exit 0 or 1 with an output, or a one-line error with exit 2
(3 would be an internal error worth a look); never a crash (a signal), a traceback, a hang (the process is
killed after --timeout seconds), memory past --memory-mib (an address-space limit), or a file left behind
other than the finished output.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import media_fixtures as mf  # noqa: E402


def bases(folder: Path) -> list[Path]:
    """Small valid inputs of different containers and codecs."""
    return [
        mf.make_clip(folder / "vfr.mkv", frames=12, vfr=True, audio_tracks=2, subtitles=True).path,
        mf.make_clip(folder / "cfr.mp4", frames=12, rate=25, colours="bt601", rotation=90).path,
        mf.make_clip(folder / "raw.h264", frames=12, audio_tracks=0).path,
        mf.make_clip(folder / "tff.mkv", frames=12, interlaced=True, audio_tracks=1).path,
        mf.make_clip(folder / "ten.mkv", frames=8, pix_fmt="yuv420p10le", audio_tracks=0).path,
    ]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip 1..64 random bytes; a quarter of the time also cut the file at a random point."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 64)):
        buf[rng.randrange(len(buf))] ^= rng.randint(1, 255)
    if rng.random() < 0.25:
        del buf[rng.randrange(len(buf) // 4, len(buf)) :]
    return bytes(buf)


def run_one(path: Path, timeout: float, memory_mib: int) -> dict:
    out_dir = path.parent / f"{path.stem}-out"
    out_dir.mkdir()
    out = out_dir / "o.mkv"

    def limit() -> None:  # runs in the child: an address-space cap makes "unbounded memory" a failure
        resource.setrlimit(resource.RLIMIT_AS, (memory_mib << 20, memory_mib << 20))

    argv = [
        sys.executable,
        "-m",
        "vsr",
        "upscale",
        str(path),
        str(out),
        "--preset",
        "ultrafast",
        "--threads",
        "1",
    ]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [*argv, "--stall-timeout", str(max(5, timeout / 2))],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, err = "hang", ""
    leftovers = sorted(p.name for p in out_dir.iterdir() if p != out)
    record = {
        "input": path.name,
        "exit": code,
        "seconds": round(time.perf_counter() - start, 2),
        "traceback": "Traceback" in err,
        "error_lines": len([line for line in err.splitlines() if line.startswith("vsr: error:")]),
        "last_line": err.strip().splitlines()[-1][:160] if err.strip() else "",
        "output": out.exists(),
        "leftovers": leftovers,
    }
    shutil.rmtree(out_dir)
    return record


def verdict(r: dict) -> str | None:
    """What broke the contract in one run, or None."""
    if r["exit"] == "hang":
        return "hang"
    if isinstance(r["exit"], int) and r["exit"] < 0:
        return f"killed by signal {-r['exit']}"
    if r["traceback"]:
        return "traceback"
    if r["leftovers"]:
        return "files left behind"
    if r["exit"] in (0, 1) and not r["output"]:
        return "success without output"
    if r["exit"] not in (0, 1) and r["output"]:
        return "failure with output"
    if r["exit"] in (2, 3, 130) and r["error_lines"] != 1:
        return "not exactly one error line"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--memory-mib", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="vsr-fuzz-") as tmp:
        folder = Path(tmp)
        sources = bases(folder)
        variants = []
        for k in range(args.variants):
            base = sources[k % len(sources)]
            path = folder / f"v{k:04d}{base.suffix}"
            path.write_bytes(mutate(base.read_bytes(), rng))
            variants.append(path)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            records = list(pool.map(lambda p: run_one(p, args.timeout, args.memory_mib), variants))
    for r in records:
        r["violation"] = verdict(r)
    tally = {
        "variants": len(records),
        "seed": args.seed,
        "exit_codes": dict(collections.Counter(str(r["exit"]) for r in records)),
        "violations": dict(collections.Counter(r["violation"] for r in records if r["violation"])),
        "max_seconds": max(r["seconds"] for r in records),
        "errors_seen": dict(
            collections.Counter(
                r["last_line"].split(":")[-1].strip()[:60] for r in records if r["exit"] not in (0, 1)
            ).most_common(12)
        ),
    }
    args.out.write_text(json.dumps({"tally": tally, "runs": records}, indent=1) + "\n")
    print(json.dumps(tally, indent=1))


if __name__ == "__main__":
    main()
