"""The daemon's memory with many `sleep` processes, idle and once used.

    python3 bench/footprint.py [--programs N | --numprocs N] [--heaptrack OUT]

`--programs N` (default 1000) writes N one-process programs, `--numprocs N`
one program with N processes. Starts target/release/taskmasterd on it, waits
for every process RUNNING, lets the daemon settle (it trims its memory once
no deadline is near), and prints VmRSS, the anonymous part and the heap
mapping's resident size; then the same once used (`status`, a `kill -9` of
one child and its replacement, `status`, `tail`). With `--heaptrack OUT` the
daemon runs under heaptrack and is killed (SIGKILL) once idle (or once used,
`--at used`), so that heaptrack's "leaked" figure is what was live then
(`heaptrack_print OUT.zst`).
docs/benchmarks.md ("Footprint") has the figures.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_daemons import SLEEP, alive, children, status_field, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def programs_text(programs, numprocs):
    if numprocs:
        return f"  web:\n    cmd: {SLEEP} 100000\n    numprocs: {numprocs}\n    starttime: 0\n"
    return "".join(
        f"  web{i:04}:\n    cmd: {SLEEP} 100000\n    starttime: 0\n" for i in range(programs)
    )


def request(sock, line):
    """One connection per request, as a client would; returns the reply."""
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(60)
        c.connect(str(sock))
        c.sendall(line.encode() + b"\n")
        buf = b""
        while True:
            lines = buf.split(b"\n")
            if len(lines) > 1 and any(l == b"OK" or l.startswith(b"ERR") for l in lines[:-1]):
                break
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")


def heap_kib(pid):
    """Resident KiB of the [heap] mapping and all anonymous KiB."""
    heap, in_heap = 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if "-" in line.split()[0] and len(line.split()) >= 5:
                in_heap = line.rstrip().endswith("[heap]")
            elif in_heap and line.startswith("Rss:"):
                heap += int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        anon = next(int(l.split()[1]) for l in f if l.startswith("Anonymous:"))
    return heap, anon


def report(what, pid):
    heap, anon = heap_kib(pid)
    print(
        f"{what:<6} RSS {status_field(pid, 'VmRSS')} KiB, anonymous {anon} KiB, "
        f"heap {heap} KiB"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--numprocs", type=int, default=0)
    ap.add_argument("--heaptrack", metavar="OUT")
    ap.add_argument("--at", choices=["idle", "used"], default="idle",
                    help="with --heaptrack: kill the daemon once idle or once used")
    ap.add_argument("--binary", default=str(ROOT / "target/release/taskmasterd"))
    a = ap.parse_args()
    n = a.numprocs or a.programs
    with tempfile.TemporaryDirectory(prefix="tmfoot") as d:
        d = Path(d)
        sock = d / "tm.sock"
        conf = d / "tm.yaml"
        conf.write_text(
            f"socket: {sock}\nlogfile: {d / 'tm.log'}\nprograms:\n"
            + programs_text(a.programs, a.numprocs)
        )
        cmd = [a.binary, "-c", str(conf)]
        if a.heaptrack:
            cmd = ["heaptrack", "-o", a.heaptrack] + cmd
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for("the socket", sock.exists, 120, 0.01)
            # Under heaptrack the daemon is a child of the heaptrack script.
            pid = proc.pid
            if a.heaptrack:
                wait_for("the daemon", lambda: any(
                    Path(f"/proc/{c}/exe").resolve() == Path(a.binary).resolve()
                    for c in _descendants(proc.pid)), 30, 0.01)
                pid = next(c for c in _descendants(proc.pid)
                           if Path(f"/proc/{c}/exe").resolve() == Path(a.binary).resolve())

            def running():
                return request(sock, "status").count(" RUNNING ") >= n

            def sleeping():
                kids = children(pid)
                return len(kids) >= n and all(_comm(k) == "sleep" for k in kids)

            # Watched from /proc, not asked: "idle" is a daemon that no client
            # has talked to since it settled (and trimmed, src/footprint.rs).
            wait_for(f"{n} sleeps", sleeping, 300, 0.05)
            time.sleep(3)
            report("idle", pid)
            if not running():
                raise RuntimeError("not every process is RUNNING")
            if a.heaptrack and a.at == "idle":
                return _kill(proc, pid)
            request(sock, "status")
            kids = sorted(children(pid))
            os.kill(kids[0], signal.SIGKILL)
            wait_for("the replacement", lambda: len(children(pid) - set(kids)) == 1, 30)
            wait_for("all RUNNING again", running, 30, 0.05)
            request(sock, "tail " + request(sock, "status").split()[0])
            time.sleep(0.3)
            report("used", pid)
            if a.heaptrack:
                return _kill(proc, pid)
            request(sock, "shutdown")
            proc.wait(60)
            wait_for("the children to go", lambda: not any(alive(k) for k in kids[1:]), 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _kill(proc, pid):
    """SIGKILL, so that heaptrack's "leaked" is what was live; then the children."""
    kids = children(pid)
    os.kill(pid, signal.SIGKILL)
    for k in kids:
        os.kill(k, signal.SIGKILL)
    proc.wait(120)


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _descendants(pid):
    out = []
    for c in children(pid):
        out.append(c)
        out.extend(_descendants(c))
    return out


if __name__ == "__main__":
    main()
