"""What the benchmarks ran on: the figures compare only within one run on one machine."""

import os
import platform
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().split("\n"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> str:
    return (
        f"{_cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
