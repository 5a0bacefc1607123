#!/usr/bin/env python3
"""Tables for BENCHMARKS.md from bench/measure.sh's files.

usage: report.py OUTDIR N [N ...]
"""
import json
import os
import platform
import sys

# The reads `nodedev list` needs per device: open, read and close of its
# uevent (driver, ids, class) and one readlink of iommu_group.
FLOOR_PER_DEVICE = 4


def median_s(path):
    with open(path) as f:
        return json.load(f)["results"][0]["median"]


def cpu_s(path):
    """Mean user + system CPU time: on a shared machine the wall time also
    counts the time other processes held the CPU."""
    with open(path) as f:
        r = json.load(f)["results"][0]
    return r["user"] + r["system"]


def load(out, n, when):
    """The load averages `uptime` printed before or after the timed rounds."""
    path = os.path.join(out, f"n{n}", f"load-{when}")
    if not os.path.exists(path):
        return "?"
    return open(path).read().rsplit("load average:", 1)[-1].strip()


def rounds_of(path):
    with open(path) as f:
        return json.load(f)["results"][0].get("rounds", "?")


def syscalls(path):
    """Total calls from `strace -c` output (its last line), or None."""
    if not os.path.exists(path):
        return None
    # "100.00  SECONDS  USECS/CALL  CALLS  [ERRORS]  total"
    return int([l for l in open(path) if l.strip()][-1].split()[3])


def main():
    out, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]]
    tools = [l.rstrip("\n").split("|", 1) for l in open(os.path.join(out, f"n{sizes[0]}", "tools"))]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}. "
          "Reproduce: `sudo bash bench/run.sh` (trees from nodedev-gen-sysfs, bind-mounted read-only over /sys in a private mount namespace).\n")

    print("Load average (1, 5, 15 min) before and after each N's timed rounds: " + "; ".join(
        f"N={n} {load(out, n, 'before')} to {load(out, n, 'after')}" for n in sizes) + ".\n")
    rounds = ", ".join(f"N={n} {rounds_of(os.path.join(out, f'n{n}', tools[0][0] + '.json'))}" for n in sizes)
    print(f"Median wall time over alternating runs (bench/alternate.py: one run of each tool in turn; rounds: {rounds}), "
          "and each tool's time divided by `nodedev list`'s (higher: nodedev faster):\n")
    print("| tool | " + " | ".join(f"N={n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    ref = {n: median_s(os.path.join(out, f"n{n}", tools[0][0] + ".json")) for n in sizes}
    for slug, name in tools:
        cells = []
        for n in sizes:
            t = median_s(os.path.join(out, f"n{n}", slug + ".json"))
            cells.append(f"{t * 1000:.1f} ms" + ("" if slug == tools[0][0] else f" ({t / ref[n]:.1f}x)"))
        print(f"| {name} | " + " | ".join(cells) + " |")

    if len(sizes) > 1:
        a, b = sizes[-2], sizes[-1]
        print(f"\nGrowth from N={a} to N={b} ({b / a:.0f}x the functions): " + ", ".join(
            f"{name} {median_s(os.path.join(out, f'n{b}', slug + '.json')) / median_s(os.path.join(out, f'n{a}', slug + '.json')):.1f}x"
            for slug, name in tools) + ".")

    print(f"\nSyscalls per device (strace -f -c), total/N; the floor for `nodedev list` is "
          f"{FLOOR_PER_DEVICE} per device (open, read, close of uevent; readlink of iommu_group):\n")
    print("| tool | " + " | ".join(f"N={n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for slug, name in tools:
        counts = [syscalls(os.path.join(out, f"n{n}", slug + ".strace")) for n in sizes]
        if counts[0] is None:
            continue
        cells = [f"{c / n:.1f}" + (f" ({c / n / FLOOR_PER_DEVICE:.2f}x floor)" if slug == tools[0][0] else "")
                 for c, n in zip(counts, sizes)]
        print(f"| {name} | " + " | ".join(cells) + " |")

    names = dict((name, slug) for slug, name in tools)
    if "lspci -D -nn -k" in names:
        print("\n`lspci -D -nn -k` / `nodedev list`, both showing names, CPU time (user + system): " + ", ".join(
            f"N={n} {cpu_s(os.path.join(out, f'n{n}', names['lspci -D -nn -k'] + '.json')) / cpu_s(os.path.join(out, f'n{n}', tools[0][0] + '.json')):.1f}x"
            for n in sizes) + ".")
    daemon_view(out, sizes, tools)
    lookups(out, sizes)

    print("\nLines of output at the largest N (every tool saw the same tree): " + ", ".join(
        f"{name} {sum(1 for _ in open(os.path.join(out, f'n{sizes[-1]}', slug + '.out')))}" for slug, name in tools) + ".")


def daemon_view(out, sizes, tools):
    """The C API's list + XML against the peers reading the same fields."""
    names = dict((name, slug) for slug, name in tools)
    ours = names.get("C API: list + XML of each")
    peers = [n for n in ("libudev: same fields", "libpci: same fields") if n in names]
    if not ours or not peers:
        return
    print("\nList + XML of every device (what a daemon does at start), against the same fields read with "
          "libudev (as libvirt's node-device driver does) and with libpci; bench/compare_xml.py checked that "
          "the three report the same fields, names included. Peer time / C API time (higher: nodedev faster), "
          "wall and CPU (user + system):\n")
    print("| N | C API wall | " + " | ".join(f"{p} wall (ratio)" for p in peers) + " | "
          + " | ".join(f"{p} CPU ratio" for p in peers) + " |")
    print("|---|---|" + "---|" * (2 * len(peers)))
    for n in sizes:
        f = lambda name: os.path.join(out, f"n{n}", names[name] + ".json")
        w, c = median_s(f("C API: list + XML of each")), cpu_s(f("C API: list + XML of each"))
        cells = [f"{median_s(f(p)) * 1000:.1f} ms ({median_s(f(p)) / w:.2f}x)" for p in peers]
        cells += [f"{cpu_s(f(p)) / c:.2f}x" for p in peers]
        print(f"| {n} | {w * 1000:.1f} ms | " + " | ".join(cells) + " |")


def lookups(out, sizes):
    rows = []
    for n in sizes:
        path = os.path.join(out, f"n{n}", "lookup.txt")
        if not os.path.exists(path):
            continue
        for line in open(path):
            addr, *kv = line.split()
            d = dict(x.split("=", 1) for x in kv)
            rows.append(f"| {n} | {addr} | {d['lookup+xml-us']} | {d['raw-reads-us']} | {d['ratio']}x | {d['first-call-us']} |")
    if not rows:
        return
    print("\nOne device by name: virNodeDeviceLookupByName + virNodeDeviceGetXMLDesc + virNodeDeviceFree "
          "against the raw reads its XML needs (bench/lookup_one.c, in one process, alternating batches of "
          "200, median of 21 rounds; the first call of the process, which opens pci.ids, apart):\n")
    print("| N | device | lookup + XML (us) | raw reads (us) | ratio | first call (us) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


main()
