"""What the training device computes natively: bf16 on CUDA, or on a CPU with AMX or AVX-512-BF16.

Autocast to bf16 on a CPU without those instructions is emulated in fp32 and runs slower than fp32 itself
(bench/train_speed.py measures both), so `--amp` is refused there rather than silently slowing a run.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from vsr.errors import UsageError

# The /proc/cpuinfo flags that decide bf16 training speed, and those benchmarks record beside it.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
RECORDED_FLAGS = ("avx2", "avx512f", "avx512_vnni", *BF16_FLAGS, "amx_tile")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none: macOS, Windows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_name() -> str:
    """The CPU's model name, as lscpu prints it."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The instruction-set flags of the CPU that matter here (empty where the OS does not list them)."""
    return set(_cpuinfo().get("flags", "").split()) & set(RECORDED_FLAGS)


def cpu_bf16() -> str | None:
    """The CPU's native bf16 unit ("AMX", "AVX-512-BF16"), or None when bf16 would be emulated."""
    flags = cpu_flags()
    if not flags:  # no /proc/cpuinfo: ask torch's own probe (private, so guarded)
        probe = {"AMX": "_is_amx_tile_supported", "AVX-512-BF16": "_is_avx512_bf16_supported"}
        return next((unit for unit, fn in probe.items() if getattr(torch.cpu, fn, lambda: False)()), None)
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX-512-BF16" if "avx512_bf16" in flags else None


def check_amp(device: torch.device) -> None:
    """Refuse bf16 autocast where the device would only emulate it."""
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise UsageError(f"--amp: {torch.cuda.get_device_name(device)} has no bf16; train without it")
    elif device.type == "cpu":
        if cpu_bf16() is None:
            raise UsageError(
                f"--amp: this CPU ({cpu_name()}) has no native bf16 (AMX or AVX-512-BF16), where autocast "
                "is slower than fp32; train without --amp"
            )
    else:
        raise UsageError(f"--amp: bf16 autocast is for cpu and cuda devices, not {device.type}")


def describe() -> dict[str, object]:
    """The machine facts a training benchmark or history records."""
    return {
        "cpu": cpu_name(),
        "cpu_flags": sorted(cpu_flags()),
        "cpu_bf16": cpu_bf16(),
        "torch": torch.__version__,
    }
