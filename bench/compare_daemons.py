"""The two daemons as the comparison drives them, and what it reads of
them in /proc. Used by bench/compare.py."""

import os
import resource
import socket
import statistics
import subprocess
import time
import xmlrpc.client

SLEEP = "/bin/sleep"
# Output files rotate at this size (one backup kept), so that 10 s of `yes`
# takes at most twice this much disk.
ROTATE = 128 << 20


def now():
    return time.monotonic()


def wait_for(what, cond, limit=120.0, pause=0.001):
    """Polls `cond` until true; fails after `limit` seconds."""
    end = now() + limit
    while not cond():
        if now() > end:
            raise RuntimeError(f"timed out after {limit}s waiting for {what}")
        time.sleep(pause)


def children(pid):
    """Direct children of `pid` (all its threads)."""
    out = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.update(int(p) for p in f.read().split())
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def alive(pid):
    """Running and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def switches(pid):
    """Context switches of every thread of `pid`: each one is a wake-up."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if "ctxt_switches" in line:
                    total += int(line.split()[1])
    return total


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wchar(pid):
    """Bytes `pid` has written with write(2) and friends, to anything."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def median_ms(samples):
    return statistics.median(samples) * 1000


class Taskmaster:
    name = "taskmasterd"

    def __init__(self, binary, d, programs):
        self.sock = d / "tm.sock"
        conf = d / "tm.yaml"
        conf.write_text(f"socket: {self.sock}\nlogfile: {d / 'tm.log'}\nprograms:\n{programs}")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for("the taskmasterd socket", self.sock.exists, 30, 0.01)
        self.conn = socket.socket(socket.AF_UNIX)
        self.conn.settimeout(60)
        self.conn.connect(str(self.sock))
        self.buf = b""

    @staticmethod
    def sleeps(n, autostart=False):
        return (
            f"  s:\n    cmd: {SLEEP} 100000\n    numprocs: {n}\n    starttime: 0\n"
            f"    autostart: {str(autostart).lower()}\n    autorestart: always\n"
        )

    @staticmethod
    def writer(cmd, path):
        return (
            f"  w:\n    cmd: {cmd}\n    starttime: 0\n    stdout: {path}\n"
            f"    stdout_maxbytes: {ROTATE}\n    stdout_backups: 1\n"
        )

    def request(self, line):
        """Sends `line`; returns the whole reply, up to its final line."""
        self.conn.sendall(line.encode() + b"\n")
        while True:
            for end in (b"\nOK\n", b"\nERR"):
                i = self.buf.find(end)
                if i >= 0 or self.buf.startswith(end[1:]):
                    j = self.buf.index(b"\n", max(i, 0) + 1) + 1
                    reply, self.buf = self.buf[:j], self.buf[j:]
                    return reply
            chunk = self.conn.recv(1 << 20)
            if not chunk:
                raise RuntimeError("taskmasterd closed the connection")
            self.buf += chunk

    def start_all(self):
        self.request("start all")

    def status(self):
        return self.request("status")

    def count_running(self, reply):
        return sum(1 for l in reply.decode().splitlines() if " RUNNING " in l + " ")


class Supervisord:
    name = "supervisord"

    def __init__(self, binary, d, programs):
        self.sock = d / "sv.sock"
        conf = d / "sv.conf"
        conf.write_text(
            f"[unix_http_server]\nfile={self.sock}\n"
            f"[supervisord]\nlogfile={d / 'sv.log'}\npidfile={d / 'sv.pid'}\n"
            f"childlogdir={d}\nnodaemon=true\n"
            # As many as it may have: it refuses to start above the hard limit.
            f"minfds={resource.getrlimit(resource.RLIMIT_NOFILE)[0]}\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
            + programs
        )
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for("the supervisord socket", self.sock.exists, 60, 0.01)
        self.conn = None

    @staticmethod
    def sleeps(n, autostart=False):
        return (
            f"[program:s]\ncommand={SLEEP} 100000\nnumprocs={n}\n"
            "process_name=%(program_name)s_%(process_num)d\n"
            f"autostart={str(autostart).lower()}\nautorestart=true\nstartsecs=0\n"
        )

    @staticmethod
    def writer(cmd, path):
        return (
            f"[program:w]\ncommand={cmd}\nstartsecs=0\n"
            f"stdout_logfile={path}\nstdout_logfile_maxbytes={ROTATE}\n"
            "stdout_logfile_backups=1\n"
        )

    def call(self, method, *params):
        """One XML-RPC call over a kept-alive HTTP/1.1 connection, timed to the
        last byte of the response (the XML is not parsed here)."""
        body = xmlrpc.client.dumps(params, method).encode()
        head = (
            "POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = socket.socket(socket.AF_UNIX)
                self.conn.settimeout(120)
                self.conn.connect(str(self.sock))
            try:
                self.conn.sendall(head + body)
                return self.response()
            except (ConnectionError, RuntimeError):
                self.conn = None  # the server closed a kept-alive connection
        raise RuntimeError(f"supervisord did not answer {method}")

    def response(self):
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.conn.recv(1 << 20)
            if not chunk:
                raise RuntimeError("closed")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (l.partition(b":") for l in head.split(b"\r\n")[1:])
        }
        if headers.get(b"transfer-encoding") == b"chunked":
            while not rest.endswith(b"0\r\n\r\n"):
                chunk = self.conn.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("closed")
                rest += chunk
            return dechunk(rest)
        length = int(headers.get(b"content-length", b"0"))
        while len(rest) < length:
            chunk = self.conn.recv(1 << 20)
            if not chunk:
                raise RuntimeError("closed")
            rest += chunk
        if headers.get(b"connection", b"").lower() == b"close":
            self.conn = None
        return rest

    def start_all(self):
        self.call("supervisor.startAllProcesses", False)

    def status(self):
        return self.call("supervisor.getAllProcessInfo")

    def count_running(self, reply):
        (infos,), _ = xmlrpc.client.loads(reply)
        return sum(1 for i in infos if i["statename"] == "RUNNING")


def dechunk(data):
    out = b""
    while True:
        size, _, data = data.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return out
        out, data = out + data[:n], data[n + 2 :]
