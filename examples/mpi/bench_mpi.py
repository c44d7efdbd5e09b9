#!/usr/bin/env python3
"""bench_mpi.py - the MPI examples as a benchmark (./run_thread_pool bench-mpi runs it).

Runs uts_mpi (static and steal) and heat_mpi (blocking, overlap, tasks-call-mpi) on a grid of
ranks x threads whose product is the machine's cores (1xC, 2xC/2, ..., Cx1), plus the bench's
single-process tp_spawn uts at C threads as the baseline, in interleaved rounds (forward, then
backward), one warm-up round discarded. Prints medians with min-max and writes every figure as
JSON. Each program times its own work (from a barrier to the end of the traversal or of the
iterations), so process start-up and MPI_Init are not in the figures.

The ranks all run on this one machine and talk through shared memory: the figures show the
software's overheads (the progress loop, the stealing protocol, halo copies), not a network's.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

NOTE = ("Loopback ranks: every rank runs on this one machine and their messages go through "
        "shared memory, so these figures show the software's overheads (progress loop, work "
        "stealing protocol, halo copies), not a network's.")


def parse_result(text, prefix):
    """The key=value pairs of the line starting with `prefix`, or None."""
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            out = {}
            for word in line.split()[1:]:
                if "=" in word:
                    k, v = word.split("=", 1)
                    try:
                        out[k] = float(v) if any(c in v for c in ".e") else int(v)
                    except ValueError:
                        out[k] = v
            return out
    return None


def busy_cpu_seconds():
    """CPU time the whole machine has spent busy since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """CPU time of this script and of every process it has waited for (the runs)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def grid_of(cores):
    """(ranks, threads) pairs with ranks * threads == cores, ranks ascending."""
    return [(r, cores // r) for r in range(1, cores + 1) if cores % r == 0]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_range(xs, scale=1.0, digits=1):
    if not xs:
        return "-"
    return "%.*f-%.*f" % (digits, min(xs) * scale, digits, max(xs) * scale)


class Runner:
    def __init__(self, args, launch):
        self.args = args
        self.launch = launch
        self.env = dict(os.environ)
        self.env.update(launch.get("env", {}))
        self.build = args.build
        self.failures = []

    def mpi_cmd(self, prog, ranks, threads, extra):
        exe = os.path.join(self.build, "examples", "mpi", prog)
        return ([self.launch["mpiexec"], "-n", str(ranks)] + list(self.launch.get("args", [])) +
                [exe, "--ranks", str(ranks), "--threads", str(threads)] + extra)

    def run(self, cmd, prefix, label):
        try:
            p = subprocess.run(cmd, env=self.env, capture_output=True, text=True,
                               timeout=self.args.timeout)
            out, rc = p.stdout, p.returncode
            err = p.stderr
        except subprocess.TimeoutExpired:
            out, rc, err = "", 124, "timed out"
        res = parse_result(out, prefix)
        if rc == 77:  # the program says it cannot run here (e.g. no MPI_THREAD_MULTIPLE)
            sys.stderr.write("bench-mpi: skipped: %s: %s" % (label, out[-500:]))
            return None
        if rc != 0 or res is None or res.get("ok", 1) != 1:
            self.failures.append(label)
            sys.stderr.write("bench-mpi: FAILED: %s (exit %d)\n%s%s" %
                             (label, rc, out[-2000:], err[-2000:]))
            return None
        return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the build directory (default: build)")
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)),
                    help="C: ranks x threads of every grid point (default: the CPUs we may use)")
    ap.add_argument("--repeat", type=int, default=5, help="kept rounds (default 5)")
    ap.add_argument("--size", default="default", choices=["small", "default", "large"],
                    help="the uts tree (default: default, 13.4M nodes)")
    ap.add_argument("--heat-nx", type=int, default=2048, help="heat: points per row (2048)")
    ap.add_argument("--heat-ny", type=int, default=1024, help="heat: rows (1024)")
    ap.add_argument("--heat-iters", type=int, default=100, help="heat: iterations (100)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    ap.add_argument("--json", default=None,
                    help="write every figure here (default: BUILD/bench-mpi.json)")
    args = ap.parse_args()
    json_path = args.json or os.path.join(args.build, "bench-mpi.json")

    launch_file = os.path.join(args.build, "examples", "mpi", "mpi_launch.json")
    if not os.path.exists(launch_file):
        sys.exit("bench-mpi: %s is missing: the MPI examples were not built (no MPI found, or "
                 "-Dmpi=disabled)" % launch_file)
    with open(launch_file) as f:
        launch = json.load(f)
    spawn_exe = os.path.join(args.build, "bench", "rt_tp_spawn")
    have_spawn = os.access(spawn_exe, os.X_OK)
    if not have_spawn:
        print("bench-mpi: note: %s was not built (-Dbench=disabled?): no tp_spawn baseline"
              % spawn_exe)

    r = Runner(args, launch)
    grid = grid_of(args.cores)
    heat_extra = ["--nx", str(args.heat_nx), "--ny", str(args.heat_ny),
                  "--iters", str(args.heat_iters), "--no-check"]
    configs = []
    if have_spawn:
        configs.append(("tp_spawn", None, 1, args.cores))
    for ranks, threads in grid:
        for mode in ("static", "steal"):
            configs.append(("uts", mode, ranks, threads))
    for ranks, threads in grid:
        for mode in ("blocking", "overlap", "tasks-call-mpi"):
            configs.append(("heat", mode, ranks, threads))

    print("bench-mpi: %s %s (%s), %d cores: grid %s; uts tree %s; heat %dx%d, %d iterations; "
          "%d rounds + 1 warm-up" % (launch["impl"], launch["version"], launch["mpiexec"],
                                     args.cores, " ".join("%dx%d" % g for g in grid), args.size,
                                     args.heat_nx, args.heat_ny, args.heat_iters, args.repeat))
    print("bench-mpi: " + NOTE)
    sys.stdout.flush()

    runs = []  # (round, config, result)
    t_start = time.time()
    busy0, own0 = busy_cpu_seconds(), own_cpu_seconds()
    for rnd in range(args.repeat + 1):
        order = configs if rnd % 2 == 0 else list(reversed(configs))
        for kind, mode, ranks, threads in order:
            if kind == "tp_spawn":
                cmd = [spawn_exe, "--kernel", "uts", "--threads", str(threads),
                       "--size", args.size]
                res = r.run(cmd, "tp-bench-result", "tp_spawn uts %d threads" % threads)
            elif kind == "uts":
                cmd = r.mpi_cmd("uts_mpi", ranks, threads,
                                ["--mode", mode, "--size", args.size, "--quiet"])
                res = r.run(cmd, "uts-mpi-result", "uts %s %dx%d" % (mode, ranks, threads))
            else:
                cmd = r.mpi_cmd("heat_mpi", ranks, threads, ["--mode", mode] + heat_extra)
                res = r.run(cmd, "heat-mpi-result", "heat %s %dx%d" % (mode, ranks, threads))
            if rnd > 0 and res is not None:
                runs.append({"round": rnd, "kind": kind, "mode": mode, "ranks": ranks,
                             "threads": threads, "result": res})
        sys.stderr.write("bench-mpi: round %d/%d done (%.0f s)\n" %
                         (rnd, args.repeat, time.time() - t_start))

    elapsed = time.time() - t_start
    others = None
    busy1 = busy_cpu_seconds()
    if busy0 is not None and busy1 is not None and elapsed > 0:
        others = max(0.0, ((busy1 - busy0) - (own_cpu_seconds() - own0)) /
                     (elapsed * os.cpu_count()))

    def select(kind, mode, ranks, threads):
        return [x for x in runs if x["kind"] == kind and x["mode"] == mode and
                x["ranks"] == ranks and x["threads"] == threads]

    base = {x["round"]: x["result"]["value"] for x in runs if x["kind"] == "tp_spawn"}
    rows_uts, rows_heat = [], []

    print()
    print("== uts (%s tree): time from the start barrier to detected termination" % args.size)
    print("%-6s %-7s %9s %15s %9s %6s %7s %7s %10s %9s" %
          ("grid", "mode", "median", "min-max", "/tp_spawn", "eff", "share", "steals",
           "messages", "main cpu"))
    if base:
        vals = list(base.values())
        print("%-6s %-8s%7.1f ms %12s ms %9s %6s %7s %7s %10s %9s" %
              ("1x%d" % args.cores, "tp_spawn", med(vals) * 1e3, fmt_range(vals, 1e3),
               "1.00", "-", "-", "-", "-", "-"))
    for ranks, threads in grid:
        for mode in ("static", "steal"):
            xs = select("uts", mode, ranks, threads)
            if not xs:
                print("%-6s %-7s FAILED" % ("%dx%d" % (ranks, threads), mode))
                continue
            times = [x["result"]["time_s"] for x in xs]
            ratios = [x["result"]["time_s"] / base[x["round"]] for x in xs if x["round"] in base]
            row = {
                "ranks": ranks, "threads": threads, "mode": mode,
                "time_ms_median": med(times) * 1e3,
                "time_ms_min": min(times) * 1e3, "time_ms_max": max(times) * 1e3,
                "ratio_to_tp_spawn": med(ratios) if ratios else None,
                "rank_efficiency": med([x["result"]["efficiency"] for x in xs]),
                "max_share": med([x["result"]["max_share"] for x in xs]),
                "steals": med([x["result"]["steals"] for x in xs]),
                "messages": med([x["result"]["messages"] for x in xs]),
                "main_cpu_ms_per_rank": med([x["result"]["main_cpu_s"] for x in xs]) * 1e3,
                "runs": len(xs),
            }
            rows_uts.append(row)
            print("%-6s %-7s %7.1f ms %12s ms %9s %6.2f %6.1f%% %7.0f %10.0f %6.1f ms" %
                  ("%dx%d" % (ranks, threads), mode, row["time_ms_median"],
                   fmt_range(times, 1e3),
                   "%.2f" % row["ratio_to_tp_spawn"] if ratios else "-",
                   row["rank_efficiency"], 100 * row["max_share"], row["steals"],
                   row["messages"], row["main_cpu_ms_per_rank"]))
    print("  /tp_spawn: run time over the single-process tp_spawn uts at %d threads in the same "
          "round (median of the rounds; > 1: slower). eff: the ranks' busy time over ranks x "
          "run time. share: the largest rank's share of the nodes. main cpu: CPU time of a "
          "rank's main thread (the progress loop), mean over ranks." % args.cores)

    print()
    print("== heat (%dx%d, %d iterations): time per iteration" %
          (args.heat_nx, args.heat_ny, args.heat_iters))
    print("%-6s %-15s %9s %15s %13s %13s" %
          ("grid", "mode", "median", "min-max", "halo wait", "main cpu"))
    for ranks, threads in grid:
        for mode in ("blocking", "overlap", "tasks-call-mpi"):
            xs = select("heat", mode, ranks, threads)
            if not xs:
                print("%-6s %-15s FAILED or skipped" % ("%dx%d" % (ranks, threads), mode))
                continue
            ms = [x["result"]["ms_per_iter"] for x in xs]
            row = {
                "ranks": ranks, "threads": threads, "mode": mode,
                "ms_per_iter_median": med(ms), "ms_per_iter_min": min(ms),
                "ms_per_iter_max": max(ms),
                "halo_wait_ms_per_iter": med([x["result"]["halo_wait_ms_per_iter"] for x in xs]),
                "main_cpu_ms_per_iter": med([x["result"]["main_cpu_ms_per_iter"] for x in xs]),
                "runs": len(xs),
            }
            rows_heat.append(row)
            print("%-6s %-15s %6.3f ms %12s ms %10.3f ms %10.3f ms" %
                  ("%dx%d" % (ranks, threads), mode, row["ms_per_iter_median"],
                   fmt_range(ms, 1, 3), row["halo_wait_ms_per_iter"],
                   row["main_cpu_ms_per_iter"]))
    print("  halo wait, per iteration and rank: blocking: the main thread in MPI_Waitall (the "
          "pool idle); overlap: the part of the exchange still running after the interior "
          "rows were done; tasks-call-mpi: the edge tasks' time waiting for their messages "
          "(each holding a worker). main cpu: the main thread's CPU time per iteration.")
    print()
    print("bench-mpi: %d runs in %.0f s" % (len(runs), elapsed))
    if others is not None:
        print("bench-mpi: other processes used %.0f%% of the machine meanwhile%s" %
              (100 * others, " (WARNING: the figures are disturbed; rerun on a quiet machine)"
               if others > 0.25 else ""))
    print("bench-mpi: " + NOTE)

    doc = {
        "note": NOTE,
        "machine": {"cpus": args.cores, "platform": platform.platform(),
                    "processor": platform.processor()},
        "mpi": launch,
        "config": {"grid": grid, "repeat": args.repeat, "uts_size": args.size,
                   "heat": {"nx": args.heat_nx, "ny": args.heat_ny,
                            "iters": args.heat_iters}},
        "elapsed_s": elapsed,
        "other_load": others,
        "tp_spawn_uts_s": sorted(base.values()),
        "uts": rows_uts,
        "heat": rows_heat,
        "runs": runs,
        "failures": r.failures,
    }
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=1)
    print("bench-mpi: JSON in %s" % json_path)
    if r.failures:
        print("bench-mpi: %d run(s) FAILED: %s" % (len(r.failures), ", ".join(r.failures)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
