"""What every benchmark records besides its figures, and where it writes them."""

import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def environment() -> dict[str, Any]:
    # The load averages (1, 5, 15 minutes) as the run ends: a figure taken on a busy machine
    # measures the machine, so every result says how quiet it was.
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d"),
    }


QUIET_LOAD = 1.0
SETTLE_SECONDS = 180.0


async def settled(below: float = QUIET_LOAD, longest: float = SETTLE_SECONDS) -> float:
    """Wait, up to `longest` seconds, until the 1-minute load average is below `below`, and
    return it: a part measured right after another starts with the first one's load (the
    load average decays over about a minute), which is the benchmark's own, not the code's."""
    deadline = time.monotonic() + longest
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        await asyncio.sleep(1)
    return os.getloadavg()[0]


def write_result(result: dict[str, Any], output: Path) -> None:
    """Write `result` with the environment to `output` (JSON) and echo it to stdout."""
    result = {**result, **environment()}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()
