"""Two taskmasterd binaries, interleaved, on the two figures the daemon's own
CPU decides at 1000 processes: `status` and shutdown (docs/benchmarks.md,
"At 1000 processes, third round").

    python3 bench/ab.py OLD_BINARY NEW_BINARY [--procs 1000] [--runs 7]

Each run starts a fresh daemon with N `sleep` processes (`numprocs`), waits
until all are RUNNING, then:
- status: 500 `status` requests on one connection; the daemon's CPU per
  request (from /proc/PID/schedstat, in ns) and the round-trip median;
- shutdown: SIGTERM, then the time until the daemon has exited and every
  child is gone, and the daemon's CPU from SIGTERM to its exit (read from
  the exited daemon before it is reaped, so the children's CPU, which the
  kernel adds to the parent's only once reaped, is not counted).
Medians over the runs, the binaries alternating so that both see the same
load on a shared machine.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from compare_daemons import alive, children, wait_for


def cpu(pid):
    """Run time of `pid`'s main thread (the daemon has no other), seconds."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(60)
        self.s.connect(str(path))
        self.buf = b""

    def request(self, line):
        self.s.sendall(line.encode() + b"\n")
        while True:
            i = self.buf.find(b"OK\n")
            if i == 0 or (i > 0 and self.buf[i - 1 : i] == b"\n"):
                reply, self.buf = self.buf[: i + 3], self.buf[i + 3 :]
                return reply
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("the daemon closed the connection")
            self.buf += chunk


def one_run(binary, n, requests):
    with tempfile.TemporaryDirectory(prefix="tmab") as d:
        d = Path(d)
        sock = d / "s.sock"
        conf = d / "c.yaml"
        conf.write_text(
            f"socket: {sock}\nlogfile: {d / 'log'}\nprograms:\n  s:\n"
            f"    cmd: /bin/sleep 100000\n    numprocs: {n}\n    starttime: 0\n"
        )
        p = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for("the socket", sock.exists, 30, 0.01)
            c = Conn(sock)
            wait_for("all RUNNING", lambda: c.request("status").count(b" RUNNING ") == n, 60, 0.05)
            time.sleep(1.0)
            lat = []
            c0 = cpu(p.pid)
            for _ in range(requests):
                t = time.monotonic()
                c.request("status")
                lat.append(time.monotonic() - t)
            status_cpu = (cpu(p.pid) - c0) / requests
            c.s.close()
            time.sleep(0.5)
            kids = children(p.pid)
            c0 = cpu(p.pid)
            t = time.monotonic()
            p.send_signal(signal.SIGTERM)
            os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
            shut_cpu = cpu(p.pid) - c0
            wait_for("every child gone", lambda: not any(alive(k) for k in kids), 60, 0.0005)
            shut_wall = time.monotonic() - t
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
        return status_cpu, statistics.median(lat), shut_cpu, shut_wall


def main():
    a = argparse.ArgumentParser()
    a.add_argument("binaries", nargs="+")
    a.add_argument("--procs", type=int, default=1000)
    a.add_argument("--runs", type=int, default=7)
    a.add_argument("--requests", type=int, default=500)
    args = a.parse_args()
    res = {b: [] for b in args.binaries}
    for i in range(args.runs):
        for b in args.binaries:
            r = one_run(b, args.procs, args.requests)
            res[b].append(r)
            print(
                f"run {i + 1} {b}: status cpu {r[0] * 1e3:.3f} ms, rtt {r[1] * 1e3:.3f} ms; "
                f"shutdown cpu {r[2] * 1e3:.1f} ms, all gone {r[3] * 1e3:.1f} ms",
                flush=True,
            )
    print(f"\nmedians of {args.runs} runs, {args.procs} processes:")
    for b in args.binaries:
        m = [statistics.median(r[k] for r in res[b]) * 1e3 for k in range(4)]
        lo = min(r[3] for r in res[b]) * 1e3
        hi = max(r[3] for r in res[b]) * 1e3
        print(
            f"{b}: status cpu/request {m[0]:.3f} ms, round trip {m[1]:.3f} ms; "
            f"shutdown cpu {m[2]:.1f} ms, all gone {m[3]:.1f} ms ({lo:.0f}-{hi:.0f})"
        )


if __name__ == "__main__":
    main()
