#!/usr/bin/env python3
"""Runs a command several times; prints the median wall time and the largest peak RSS.

usage: measure.py RUNS OUTFILE -- CMD [ARGS...]   (stdout of CMD goes to OUTFILE)
prints: wall_s=<median seconds> peak_kb=<max resident KiB>"""
import os
import statistics
import subprocess
import sys
import time


def main():
    runs, outfile = int(sys.argv[1]), sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    walls, peaks = [], []
    for _ in range(runs):
        with open(outfile, "wb") as out:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            walls.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{cmd[0]} failed with status {status}")
        peaks.append(usage.ru_maxrss)
    print(f"wall_s={statistics.median(walls):.3f} peak_kb={max(peaks)}")


if __name__ == "__main__":
    main()
