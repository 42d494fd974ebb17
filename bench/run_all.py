"""Run every benchmark in one go (`make bench`). Each prints its own side-by-side table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in (
    "bench_cold_import.py",
    "bench_restore_poll.py",
    "bench_validation.py",
    "bench_cutover.py",
    "bench_drill.py",
    "bench_in_place.py",
    "bench_recordings.py",
):
    print(f"\n== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
