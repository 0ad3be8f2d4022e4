#!/usr/bin/env python3
"""`start all` of N `sleep` processes through taskmasterd, against a bare C
posix_spawn loop (bench/spawn_loop.c), measured by CPU time as well as wall
time: on a shared, loaded machine the wall clock moves by 2x from run to run,
CPU time much less. Three variants, interleaved round by round:

  clone  the daemon as built (src/spawn/clone.rs)
  std    the same binary with TASKMASTER_NO_CLONE_SPAWN=1 (std's posix_spawn)
  bare   the C loop

CPU = the spawner's own time during the start (/proc/PID/schedstat) plus the
time of every child once it sleeps (its work before and after exec: with a
copied descriptor table, closing it at exec is the child's).

`kill` as first argument: with N processes RUNNING (autorestart), K = 100
`kill -9` one at a time, each waited for its replacement: median latency
(kill to the new pid in the daemon's children list, polled) and CPU per kill
(the daemon's, plus the new child's own).

usage: bench/spawn_cpu.py [kill] [N] [ROUNDS]   (first: cargo build --release)
"""
import os, socket, statistics, subprocess, sys, tempfile, time, shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAEMON = os.path.join(ROOT, "target/release/taskmasterd")
LOOP = os.path.join(ROOT, "target/spawn_loop")
SLEEP = shutil.which("sleep")


def cpu_ns(pid):
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except OSError:
        return 0


def sleeping(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "S"
    except OSError:
        return True


def request(sock, line):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(120)
    s.connect(sock)
    s.sendall(line.encode() + b"\n")
    buf = b""
    while not (buf.endswith(b"OK\n") or b"\nERR" in buf or buf.startswith(b"ERR")):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return buf.decode()


def daemon_round(n, env_extra, kills=0):
    d = tempfile.mkdtemp(prefix="spawncpu")
    sock = os.path.join(d, "s.sock")
    conf = os.path.join(d, "t.yaml")
    with open(conf, "w") as f:
        f.write(f"socket: {sock}\nlogfile: {d}/d.log\nprograms:\n  s:\n    cmd: {SLEEP} 100000\n"
                f"    numprocs: {n}\n    starttime: 0\n    autostart: {'true' if kills else 'false'}\n"
                f"    autorestart: always\n    startretries: 1000\n")
    env = dict(os.environ, **env_extra)
    p = subprocess.Popen([DAEMON, "-c", conf], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while not os.path.exists(sock):
        assert time.time() < deadline, "no socket"
        time.sleep(0.01)
    time.sleep(0.2)
    if kills:
        result = kill_round(p.pid, n, kills)
        request(sock, "shutdown")
        p.wait(timeout=60)
        shutil.rmtree(d, ignore_errors=True)
        return result
    c0 = cpu_ns(p.pid)
    t0 = time.perf_counter_ns()
    reply = request(sock, "start all")
    wall = time.perf_counter_ns() - t0
    own = cpu_ns(p.pid) - c0
    assert reply.endswith("OK\n"), reply[-200:]
    with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
        kids = [int(x) for x in f.read().split()]
    assert len(kids) == n, len(kids)
    children = 0
    for k in kids:
        while not sleeping(k):
            time.sleep(0.001)
        children += cpu_ns(k)
    request(sock, "shutdown")
    p.wait(timeout=60)
    shutil.rmtree(d, ignore_errors=True)
    return wall, own, children


def children_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def kill_round(pid, n, kills):
    deadline = time.time() + 120
    while len(children_of(pid)) < n or not all(sleeping(k) for k in children_of(pid)):
        assert time.time() < deadline, "not all running"
        time.sleep(0.05)
    lat, cpu = [], []
    for _ in range(kills):
        old = set(children_of(pid))
        victim = min(old)
        c0 = cpu_ns(pid)
        t0 = time.perf_counter_ns()
        os.kill(victim, 9)
        while True:
            new = set(children_of(pid)) - old
            if new:
                break
        lat.append(time.perf_counter_ns() - t0)
        (child,) = new
        while not sleeping(child):
            time.sleep(0.0005)
        cpu.append(cpu_ns(pid) - c0 + cpu_ns(child))
    return statistics.median(lat), statistics.median(cpu), 0


def bare_round(n):
    out = subprocess.run([LOOP, str(n), SLEEP], capture_output=True, text=True, check=True)
    return tuple(int(x) for x in out.stdout.split())


def main():
    args = sys.argv[1:]
    kill = bool(args) and args[0] == "kill"
    args = args[1:] if kill else args
    n = int(args[0]) if args else 1000
    rounds = int(args[1]) if len(args) > 1 else 5
    if kill:
        res = {"clone": [], "std": []}
        for _ in range(rounds):
            res["clone"].append(daemon_round(n, {}, kills=100))
            res["std"].append(daemon_round(n, {"TASKMASTER_NO_CLONE_SPAWN": "1"}, kills=100))
        print(f"kill -9 -> replacement with {n} processes, 100 kills a round, {rounds} interleaved rounds")
        for k, v in res.items():
            print(f"{k:6} median latency per round (ms): {', '.join(f'{x[0]/1e6:.2f}' for x in v)}; "
                  f"median CPU per kill (ms): {', '.join(f'{x[1]/1e6:.2f}' for x in v)}")
        return
    if not os.path.exists(LOOP):
        subprocess.run(["cc", "-O2", "-o", LOOP, os.path.join(ROOT, "bench/spawn_loop.c")], check=True)
    res = {"clone": [], "std": [], "bare": []}
    for _ in range(rounds):
        res["clone"].append(daemon_round(n, {}))
        res["std"].append(daemon_round(n, {"TASKMASTER_NO_CLONE_SPAWN": "1"}))
        res["bare"].append(bare_round(n))
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in res.items()}
    print(f"start all of {n}, medians of {rounds} interleaved rounds (ms)")
    print(f"{'':6} {'wall':>8} {'spawner CPU':>12} {'children CPU':>13} {'total CPU':>10} {'CPU vs bare':>11} {'wall vs bare':>12}")
    bare_total = med["bare"][1] + med["bare"][2]
    for k in ("clone", "std", "bare"):
        w, own, ch = med[k]
        print(f"{k:6} {w/1e6:8.1f} {own/1e6:12.1f} {ch/1e6:13.1f} {(own+ch)/1e6:10.1f} "
              f"{(own+ch)/bare_total:11.2f} {w/med['bare'][0]:12.2f}")
    # Per-round CPU ratios too: the spread says how far to trust the medians.
    for k in ("clone", "std"):
        r = sorted((a[1] + a[2]) / (b[1] + b[2]) for a, b in zip(res[k], res["bare"]))
        print(f"{k}: per-round CPU ratio vs bare {', '.join(f'{x:.2f}' for x in r)}")


if __name__ == "__main__":
    main()
