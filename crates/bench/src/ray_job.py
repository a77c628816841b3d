# ferry's Ray benchmark job: the seed's CPU-bound and I/O-bound tasks (Task 5.1, Step 3), run
# through Ray's Jobs API by `ferry bench ray`. Parameters arrive as JSON in FERRY_RAY_PARAMS;
# the measurements leave as one line "FERRY_RAY_RESULT {json}" (a failure as one line
# "FERRY_RAY_ERROR message" and exit status 1).
#
# The job reserves `num_cpus` of the cluster's CPUs in a placement group (one bundle of 1 CPU
# each) and runs every task inside it with num_cpus=1, so at most `num_cpus` tasks run at once:
# 1 vs 2 CPUs is the same cluster with half or all of it in use.
import json
import math
import os
import sys
import time

import ray
from ray.util.placement_group import placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

try:
    import numpy as np

    sqrt, sin, LIB = np.sqrt, np.sin, "numpy"
except ImportError:  # the seed uses numpy; without it the task is the same loop in math
    sqrt, sin, LIB = math.sqrt, math.sin, "math"


def fail(message):
    print("FERRY_RAY_ERROR " + message, flush=True)
    sys.exit(1)


P = json.loads(os.environ["FERRY_RAY_PARAMS"])
ray.init()
total = ray.cluster_resources()
have = int(total.get("CPU", 0))
cpus = int(P.get("num_cpus") or have)
if cpus < 1 or cpus > have:
    fail(
        f"cannot reserve {cpus} CPUs: the cluster has {have} "
        f"(give --num-cpus between 1 and {have})"
    )
pg = placement_group([{"CPU": 1}] * cpus, strategy="PACK")
ready, _ = ray.wait([pg.ready()], timeout=P.get("reserve_timeout_s", 60))
if not ready:
    fail(
        f"could not reserve {cpus} CPUs within {P.get('reserve_timeout_s', 60)} s: "
        f"other jobs hold them (available: {ray.available_resources().get('CPU', 0):g})"
    )
available = ray.available_resources()
strategy = PlacementGroupSchedulingStrategy(placement_group=pg)


@ray.remote(num_cpus=1)
def compute_intensive_task(n):
    """The seed's compute-intensive work; returns its own run time."""
    t = time.perf_counter()
    result = 0
    for i in range(n):
        result += sqrt(i) * sin(i)
    return time.perf_counter() - t


@ray.remote(num_cpus=1)
def io_intensive_task(seconds):
    """The seed's I/O-intensive work (a sleep); returns its own run time."""
    t = time.perf_counter()
    time.sleep(seconds)
    return time.perf_counter() - t


def batch(fn, arg, n):
    start = time.perf_counter()
    durations = ray.get([fn.options(scheduling_strategy=strategy).remote(arg) for _ in range(n)])
    return time.perf_counter() - start, durations


# Warm-up, untimed: one worker process per reserved CPU, numpy imported in each.
warm = time.perf_counter()
batch(io_intensive_task, 0.2, cpus)
batch(compute_intensive_task, 1000, cpus)
warm = time.perf_counter() - warm

rounds = []
for r in range(P["rounds"]):
    row = {"round": r + 1, "start": time.time()}
    if P["cpu"]:
        row["cpu_seconds"], row["cpu_task_seconds"] = batch(
            compute_intensive_task, P["cpu_iterations"], P["tasks"]
        )
    if P["io"]:
        row["io_seconds"], row["io_task_seconds"] = batch(
            io_intensive_task, P["io_sleep_s"], P["tasks"]
        )
    rounds.append(row)

print(
    "FERRY_RAY_RESULT "
    + json.dumps(
        {
            "ray_version": ray.__version__,
            "python": sys.version.split()[0],
            "cpu_library": LIB,
            "num_cpus": cpus,
            "cluster_resources": total,
            "available_resources": available,
            "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            "warmup_seconds": warm,
            "rounds": rounds,
        }
    ),
    flush=True,
)
