#!/usr/bin/env python3
"""Runs the Spark job (python -m expansa.spark) once on a local-cluster master and measures it.

usage: spark_run.py PYTHON PARQUET_BOOK WORKERS EXECUTOR_MB OUT_JSON EVENT_DIR [COMMAND]

PYTHON is the interpreter with pyspark and expansa installed (driver and Python workers).
Master `local-cluster[WORKERS,1,EXECUTOR_MB]`: the master and the workers run in the driver's
JVM, each executor is a JVM of its own (CoarseGrainedExecutorBackend, one core) with its
Python workers. While the job runs, every process under it is sampled every 0.25 s from /proc
(resident set size); the event log (spark.eventLog.enabled) gives the stages' times, shuffle
and the bytes sent to and received from the Python workers.

prints one JSON object: wall time, peak RSS of the driver (python + JVM), of each executor
(its JVM, its Python workers, both at once), and the stages.
"""
import glob
import json
import os
import subprocess
import sys
import threading
import time


def processes():
    """{pid: (ppid, rss_kb, cmdline)} of every process on the machine we can read."""
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            rss = 0
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            found[int(d)] = (ppid, rss, cmd)
        except (OSError, ValueError, IndexError):
            continue
    return found


def descendants(procs, root):
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class Sampler(threading.Thread):
    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.stop, self.samples = root, threading.Event(), 0
        self.driver = 0          # peak of the driver's python + JVM (with master and workers)
        self.executors = {}      # executor JVM pid -> {"jvm", "python", "total"} peaks
        self.total = 0           # peak of everything at once

    def run(self):
        while not self.stop.is_set():
            procs = processes()
            tree = descendants(procs, self.root)
            executors = [p for p in tree if "CoarseGrainedExecutorBackend" in procs[p][2]]
            in_executors = set()
            for e in executors:
                sub = descendants(procs, e)
                in_executors.update(sub)
                jvm = procs[e][1]
                py = sum(procs[p][1] for p in sub if p != e)
                peak = self.executors.setdefault(e, {"jvm": 0, "python": 0, "total": 0,
                                                     "python_processes": 0})
                peak["jvm"] = max(peak["jvm"], jvm)
                peak["python"] = max(peak["python"], py)
                peak["total"] = max(peak["total"], jvm + py)
                peak["python_processes"] = max(peak["python_processes"], len(sub) - 1)
            driver = sum(procs[p][1] for p in tree if p not in in_executors)
            self.driver = max(self.driver, driver)
            self.total = max(self.total, sum(procs[p][1] for p in tree))
            self.samples += 1
            self.stop.wait(0.25)


def stages(event_dir):
    """The event log's stages: name, wall, tasks, run time, shuffle, Python bytes."""
    logs = sorted(glob.glob(os.path.join(event_dir, "*")), key=os.path.getmtime)
    if not logs:
        return {}, []
    # Spark 4 writes a rolling event log: a folder of events_N_... files.
    files = [logs[-1]]
    if os.path.isdir(logs[-1]):
        parts = glob.glob(os.path.join(logs[-1], "events_*"))
        files = sorted(parts, key=lambda f: int(os.path.basename(f).split("_")[1]))
    events = [json.loads(line) for f in files for line in open(f)]
    out, app = {}, {}
    for e in events:
        kind = e["Event"]
        if kind == "SparkListenerApplicationStart":
            app["start"] = e["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            app["end"] = e["Timestamp"]
        elif kind == "SparkListenerStageCompleted":
            info = e["Stage Info"]
            key = (info["Stage ID"], info["Stage Attempt ID"])
            s = out.setdefault(key, {})
            s.update(stage=info["Stage ID"], name=info["Stage Name"].split(" at ")[0],
                     tasks=info["Number of Tasks"],
                     wall_s=(info["Completion Time"] - info["Submission Time"]) / 1000)
        elif kind == "SparkListenerTaskEnd" and e.get("Task Metrics"):
            key = (e["Stage ID"], e["Stage Attempt ID"])
            s = out.setdefault(key, {})
            m = e["Task Metrics"]
            add = lambda k, v: s.__setitem__(k, s.get(k, 0) + v)  # noqa: E731
            add("run_s", m["Executor Run Time"] / 1000)
            add("cpu_s", m["Executor CPU Time"] / 1e9)
            add("gc_s", m["JVM GC Time"] / 1000)
            add("input_bytes", m["Input Metrics"]["Bytes Read"])
            add("shuffle_write_bytes", m["Shuffle Write Metrics"]["Shuffle Bytes Written"])
            add("shuffle_write_s", m["Shuffle Write Metrics"]["Shuffle Write Time"] / 1e9)
            r = m["Shuffle Read Metrics"]
            add("shuffle_read_bytes", r["Remote Bytes Read"] + r["Local Bytes Read"])
            add("shuffle_fetch_wait_s", r["Fetch Wait Time"] / 1000)
            add("spill_disk_bytes", m["Disk Bytes Spilled"])
            s["peak_execution_memory"] = max(s.get("peak_execution_memory", 0),
                                             m["Peak Execution Memory"])
            for acc in e["Task Info"].get("Accumulables", []):
                name = acc.get("Name", "")
                if "python" in name.lower() or "arrow" in name.lower():
                    try:
                        add(name, int(acc.get("Update", 0)))
                    except (TypeError, ValueError):
                        pass
    return app, [out[k] for k in sorted(out)]


def main():
    python, book, workers, mb, out_json, event_dir = sys.argv[1:7]
    command = sys.argv[7] if len(sys.argv) > 7 else "movements"
    os.makedirs(event_dir, exist_ok=True)
    env = dict(os.environ)
    env["PYSPARK_PYTHON"] = python
    env["PYSPARK_DRIVER_PYTHON"] = python
    env["PYSPARK_SUBMIT_ARGS"] = " ".join([
        "--driver-memory 2g",
        "--conf spark.eventLog.enabled=true",
        f"--conf spark.eventLog.dir=file://{os.path.abspath(event_dir)}",
        "--conf spark.eventLog.compress=false",
        "--conf spark.ui.enabled=false",
        "pyspark-shell",
    ])
    start = time.perf_counter()
    proc = subprocess.Popen(
        [python, "-m", "expansa.spark", command, "--input", book, "--from", "2024-01",
         "--to", "2024-12", "--out", out_json, "--master", f"local-cluster[{workers},1,{mb}]"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(out_json + ".log", "w"))
    sampler = Sampler(proc.pid)
    sampler.start()
    status = proc.wait()
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    app, stage_list = stages(event_dir)
    print(json.dumps({
        "workers": int(workers), "executor_mb": int(mb), "status": status, "wall_s": round(wall, 3),
        "app_s": (app["end"] - app["start"]) / 1000 if "end" in app and "start" in app else None,
        "driver_peak_kb": sampler.driver, "all_peak_kb": sampler.total,
        "executors": list(sampler.executors.values()), "samples": sampler.samples,
        "stages": stage_list,
    }))
    sys.exit(0 if status == 0 else 1)


if __name__ == "__main__":
    main()
