#!/usr/bin/env python3
"""Time several commands side by side: one run of each in turn, round after
round, so that every command sees the same load of a shared machine (one
command after another, as hyperfine runs them, lets a burst of load land on
one tool only). Wall time from a monotonic clock, CPU time (user + system)
from the child's rusage.

    alternate.py [--rounds R] [--budget SECONDS] OUTDIR SLUG=COMMAND...

Writes OUTDIR/SLUG.json for each command in hyperfine's form (results[0]
with median, mean, user, system, times), which bench/report.py reads.
Rounds: at least R (default 5), more while the first round's time fits in
the budget (default 60 s), at most 30. Commands run without a shell; their
output is discarded; a command that fails stops the benchmark."""
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


def run_once(argv):
    start = time.monotonic()
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as p:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    if p.returncode != 0:
        sys.exit(f"alternate.py: {shlex.join(argv)} exited with {p.returncode}")
    return wall, usage.ru_utime, usage.ru_stime


def main():
    args = sys.argv[1:]
    rounds, budget = 5, 60.0
    while args and args[0].startswith("--"):
        opt, value = args[0], args[1]
        args = args[2:]
        if opt == "--rounds":
            rounds = int(value)
        elif opt == "--budget":
            budget = float(value)
        else:
            sys.exit(f"alternate.py: unknown option {opt}")
    out, specs = args[0], args[1:]
    cmds = [(s.split("=", 1)[0], shlex.split(s.split("=", 1)[1])) for s in specs]
    runs = {slug: [] for slug, _ in cmds}
    r = 0
    while True:
        for slug, argv in cmds:
            runs[slug].append(run_once(argv))
        r += 1
        if r == 1:
            per_round = sum(runs[s][0][0] for s, _ in cmds)
            rounds = max(rounds, min(30, int(budget / max(per_round, 1e-3))))
        if r >= rounds:
            break
    for slug, argv in cmds:
        walls = [w for w, _, _ in runs[slug]]
        result = {
            "command": shlex.join(argv),
            "median": statistics.median(walls),
            "mean": statistics.mean(walls),
            "min": min(walls),
            "max": max(walls),
            "user": statistics.mean(u for _, u, _ in runs[slug]),
            "system": statistics.mean(s for _, _, s in runs[slug]),
            "times": walls,
            "rounds": len(walls),
        }
        with open(os.path.join(out, slug + ".json"), "w") as f:
            json.dump({"results": [result]}, f, indent=1)


if __name__ == "__main__":
    main()
