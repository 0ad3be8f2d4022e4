"""taskmasterd and supervisord side by side, measured from outside.

Run by `bench/run compare` (see bench/compare): the same workloads on both
daemons, one after the other, with the same `sleep` children, measured only
through /proc and the daemons' unix sockets. docs/benchmarks.md ("Side by
side") says what each row means.
"""

import argparse
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare_daemons import (
    ROTATE,
    SLEEP,
    Supervisord,
    Taskmaster,
    alive,
    children,
    cpu_seconds,
    median_ms,
    now,
    status_field,
    switches,
    wait_for,
    wchar,
)

ROOT = Path(__file__).resolve().parent.parent
YES = "/usr/bin/yes"


def bare_loops(n):
    """The physical references: n posix_spawn calls of the same sleep, each in
    a new process group, from a plain loop; then, once they run, SIGTERM to
    each group and a wait for each (what a shutdown cannot do with less).
    Both timed; Python's own cost per call is in them, as in the daemons'."""
    t = now()
    pids = [
        os.posix_spawn(SLEEP, [SLEEP, "100000"], os.environ, setpgroup=0)
        for _ in range(n)
    ]
    spent = now() - t
    time.sleep(0.5)  # every child past its exec
    t = now()
    for p in pids:
        os.killpg(p, signal.SIGTERM)
    for p in pids:
        os.waitpid(p, 0)
    return spent, now() - t


def stop(daemon, limit=120.0):
    """SIGTERM, then the time until the daemon and all its children are gone.
    Both daemons reap their children before they exit, so the children are
    checked once the daemon has exited: the clock stops at its exit if none is
    left, at the last one's end otherwise (a scan of N /proc entries on every
    poll would time the benchmark more than the daemon)."""
    kids = children(daemon.proc.pid)
    t = now()
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(f"{daemon.name} to exit", lambda: daemon.proc.poll() is not None, limit)
    exited = now()
    if not any(alive(k) for k in kids):
        return exited - t
    wait_for(f"{daemon.name}'s children to end", lambda: not any(alive(k) for k in kids), limit)
    return now() - t


def sleeps_run(kind, binary, n, q):
    """One daemon with n sleeps: every measurement of the table but output."""
    r = {}
    with tempfile.TemporaryDirectory(prefix="tmcompare") as d:
        d = Path(d)
        daemon = kind(binary, d, kind.sleeps(n))
        pid = daemon.proc.pid
        time.sleep(q.settle)  # its own start-up (Python's imports) is not counted
        t = now()
        daemon.start_all()
        wait_for(f"{n} children of {kind.name}", lambda: len(children(pid)) >= n)
        r["spawn"] = now() - t
        wait_for(
            "every process RUNNING", lambda: daemon.count_running(daemon.status()) == n, 60, 0.05
        )
        time.sleep(q.settle)
        before = switches(pid)
        time.sleep(q.idle)
        r["wakeups"] = (switches(pid) - before) * 10.0 / q.idle
        r["rss"] = status_field(pid, "VmRSS") / 1024
        lat = []
        for _ in range(20):
            t = now()
            daemon.status()
            lat.append(now() - t)
        r["status"] = median_ms(lat)
        lat = []
        for victim in sorted(children(pid))[: q.kills]:
            before = children(pid)
            t = now()
            os.kill(victim, signal.SIGKILL)
            wait_for(
                "a replacement",
                lambda: (lambda c: victim not in c and len(c - before) >= 1)(children(pid)),
                30,
                0.0002,
            )
            lat.append(now() - t)
        r["restart"] = median_ms(lat)
        r["cpu"] = cpu_seconds(pid)
        # Shut down a settled table: supervisord loses a SIGTERM that comes
        # between fork and exec (its handler is still in place) and then
        # waits stopwaitsecs for a process it just spawned.
        wait_for(
            "every process RUNNING", lambda: daemon.count_running(daemon.status()) == n, 60, 0.05
        )
        time.sleep(q.settle)
        r["shutdown"] = stop(daemon)
    return r


def output_run(kind, binary, q):
    """One writer as fast as it can through the daemon into a file (rotated at
    ROTATE), and `status` latency meanwhile. Bytes are counted as the daemon's
    own writes (/proc/PID/io), which rotation does not lose."""
    with tempfile.TemporaryDirectory(prefix="tmcompare") as d:
        d = Path(d)
        daemon = kind(binary, d, kind.writer(YES, d / "out.log"))
        pid = daemon.proc.pid
        wait_for("the writer", lambda: len(children(pid)) == 1, 30)
        time.sleep(q.settle)
        w0, t0 = wchar(pid), now()
        lat, end = [], t0 + q.output
        while now() < end:
            t = now()
            daemon.status()
            lat.append(now() - t)
            time.sleep(0.05)
        rate = (wchar(pid) - w0) / (now() - t0)
        stop(daemon)
    return rate, median_ms(lat)


def direct_rate(q):
    """The same writer straight into a file, for as long: its own write rate
    (`wchar`). The file is cut back to nothing whenever it passes ROTATE, as
    the daemons rotate theirs, so the disk use is bounded the same way (the
    writer's offset runs on: the file is sparse, only new data takes room)."""
    with tempfile.TemporaryDirectory(prefix="tmcompare") as d:
        path = Path(d) / "out.log"
        with open(path, "wb") as out:
            p = subprocess.Popen([YES], stdout=out)
        time.sleep(q.settle)
        w0, t0 = wchar(p.pid), now()
        end = t0 + q.output
        while now() < end:
            if path.stat().st_blocks * 512 > ROTATE:
                os.truncate(path, 0)
            time.sleep(0.01)
        rate = (wchar(p.pid) - w0) / (now() - t0)
        p.kill()
        p.wait()
    return rate


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    import supervisor.options

    return (
        f"{os.cpu_count()} CPUs ({model}), {mem} MiB RAM, Linux {platform.release()}, "
        f"load average {os.getloadavg()[0]:.1f} at the start; "
        f"supervisord {supervisor.options.VERSION} on Python {platform.python_version()}"
    )


# (key, what, unit, format, higher is better)
ROWS = [
    ("spawn", "`start all` → all alive", "ms", "{:.0f}", False),
    ("bare", "  bare posix_spawn loop (reference)", "ms", "{:.0f}", False),
    ("rss", "idle RSS", "MiB", "{:.1f}", False),
    ("wakeups", "wake-ups in 10 s idle", "", "{:.0f}", False),
    ("status", "full `status`, median of 20", "ms", "{:.2f}", False),
    ("restart", "kill -9 → replacement, median", "ms", "{:.1f}", False),
    ("shutdown", "SIGTERM → all gone", "s", "{:.3f}", False),
    ("bare_stop", "  bare SIGTERM + wait loop (reference)", "s", "{:.3f}", False),
    ("cpu", "daemon CPU over the run", "s", "{:.2f}", False),
]


def table(results, out_rate, direct, q):
    """Markdown: one row per measurement and N; the ratio is supervisord's
    figure over taskmasterd's (how many times better taskmasterd does)."""
    lines = [
        "| what | N | taskmasterd | supervisord | ratio |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for n in q.sizes:
        tm, sv = results["taskmasterd", n], results["supervisord", n]
        for key, what, unit, fmt, _ in ROWS:
            a, b = tm[key], sv[key]
            if key == "spawn":
                a, b = a * 1000, b * 1000
            if key in ("bare", "bare_stop"):
                a = b = tm[key] * (1000 if key == "bare" else 1)
            ratio = b / a if a > 0 else float("inf")
            cell = lambda v: (fmt.format(v) + (f" {unit}" if unit else ""))
            reference = key in ("bare", "bare_stop")
            shown = "—" if reference else (f"{ratio:.1f}×" if a > 0 else "∞ (0 vs >0)" if b > 0 else "=")
            lines.append(f"| {what} | {n} | {cell(a)} | {cell(b)} | {shown} |")
            if not reference:
                ratios.append((f"{what.replace('`', '').strip()} (N={n})", ratio if a > 0 else None))
        lines.append(
            f"| spawn vs bare loop | {n} | {tm['spawn'] / tm['bare']:.2f}× | "
            f"{sv['spawn'] / sv['bare']:.2f}× | — |"
        )
        lines.append(
            f"| shutdown vs bare loop | {n} | {tm['shutdown'] / tm['bare_stop']:.2f}× | "
            f"{sv['shutdown'] / sv['bare_stop']:.2f}× | — |"
        )
    tm_rate, tm_lat = out_rate["taskmasterd"]
    sv_rate, sv_lat = out_rate["supervisord"]
    lines.append(
        f"| output captured, % of direct ({direct / 2**20:.0f} MiB/s) | 1 | "
        f"{100 * tm_rate / direct:.0f}% ({tm_rate / 2**20:.0f} MiB/s) | "
        f"{100 * sv_rate / direct:.0f}% ({sv_rate / 2**20:.0f} MiB/s) | {tm_rate / sv_rate:.1f}× |"
    )
    lines.append(
        f"| `status` during that output, median | 1 | {tm_lat:.2f} ms | {sv_lat:.2f} ms | "
        f"{sv_lat / tm_lat:.1f}× |"
    )
    ratios.append(("output throughput", tm_rate / sv_rate))
    ratios.append(("status under output", sv_lat / tm_lat))
    return "\n".join(lines) + "\n", ratios


def plot(ratios, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(k, v) for k, v in ratios if v is not None]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(shown) + 1.2))
    ax.barh([k for k, _ in shown], [v for _, v in shown], color="tab:blue")
    ax.axvline(1, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("times better than supervisord (log scale; > 1: taskmasterd better)")
    ax.set_title("taskmasterd vs supervisord 4.3 (rows where taskmasterd measured 0 left out)", fontsize=9)
    for i, (_, v) in enumerate(shown):
        ax.text(v, i, f" {v:.1f}×", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def publish(text, png):
    """Replaces the block between the markers in docs/benchmarks.md."""
    doc = ROOT / "docs" / "benchmarks.md"
    begin, end = "<!-- compare:begin -->\n", "<!-- compare:end -->"
    body = doc.read_text()
    if begin not in body or end not in body:
        print(f"compare: no markers in {doc}: not updated", file=sys.stderr)
        return
    head, rest = body.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + begin + text + end + tail)
    (ROOT / "docs" / "compare.png").write_bytes(png.read_bytes())
    print(f"compare: table pasted into {doc}, plot copied to docs/compare.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--taskmasterd", required=True)
    ap.add_argument("--supervisord", required=True)
    ap.add_argument("--quick", action="store_true", help="small N, short waits; docs untouched")
    q = ap.parse_args()
    q.sizes = [10, 50] if q.quick else [100, 1000]
    q.idle = 2.0 if q.quick else 10.0
    q.output = 2.0 if q.quick else 10.0
    q.settle = 0.5 if q.quick else 2.0
    q.kills = 3 if q.quick else 10
    # 1000 processes need more descriptors than the usual soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    about = machine()
    print(f"compare: {about}", flush=True)
    results = {}
    for n in q.sizes:
        for kind, binary in ((Taskmaster, q.taskmasterd), (Supervisord, q.supervisord)):
            print(f"compare: {kind.name}, {n} sleeps ...", flush=True)
            results[kind.name, n] = sleeps_run(kind, binary, n, q)
            print(f"  {results[kind.name, n]}", flush=True)
        runs = [bare_loops(n) for _ in range(3)]
        for key, i in (("bare", 0), ("bare_stop", 1)):
            median = statistics.median(r[i] for r in runs)
            results["taskmasterd", n][key] = results["supervisord", n][key] = median
    out_rate = {}
    # The direct rate before and after the daemons' runs: the machine drifts.
    print("compare: direct output ...", flush=True)
    direct = direct_rate(q)
    for kind, binary in ((Taskmaster, q.taskmasterd), (Supervisord, q.supervisord)):
        print(f"compare: {kind.name}, output ...", flush=True)
        out_rate[kind.name] = output_run(kind, binary, q)
    direct = (direct + direct_rate(q)) / 2
    text, ratios = table(results, out_rate, direct, q)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    text = (
        f"Measured {stamp}{' (--quick)' if q.quick else ''} on {about}; load average "
        f"{os.getloadavg()[0]:.1f} at the end; taskmasterd at {rev or '?'} (release build).\n\n"
        + text
    )
    out = ROOT / "target" / "compare"
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text)
    png = out / "compare.png"
    plot(ratios, png)
    print(text)
    print(f"compare: table in {out / 'compare.md'}, plot in {png}")
    if not q.quick:
        publish(text, png)


if __name__ == "__main__":
    main()
