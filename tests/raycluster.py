"""A real two-node Ray cluster on this machine for the tests: a head, and a worker node started inside its own
mount namespace (`unshare -m`) with a tmpfs over `private_dir`, so that the worker node has a disk of its own
there, as a node of a real cluster does. Token authentication is off for its processes (loopback only).

Everything it starts lives in its own process groups and under its own Ray temp dir, so stopping it leaves
any other Ray on the machine (the test session's own) alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from s3server import free_port

RAY = str(Path(sys.executable).parent / "ray")


def can_run() -> str | None:
    """Why a two-node cluster cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (unshare -m and a tmpfs mount for the worker node's own disk)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        return "unshare -m is not permitted here"
    return None


class TwoNodeCluster:
    def __init__(self, root: Path, *, head_cpus: int = 1, worker_cpus: int = 2, dashboard: bool = False):
        self.root = root
        # Short, under /tmp: Ray's socket paths (the dashboard's are the longest) must fit in 107 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.private_dir = root / "worker-only"
        self.port = free_port()
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus
        # The venv's bin on PATH, as on a node where the project is installed: a submitted job's `curate` is found.
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.procs: list[subprocess.Popen] = []
        self.address = ""
        # The job server (`ray job submit`) lives in the head's dashboard (needs ray[default]).
        self.dashboard_port = free_port() if dashboard else None
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}" if dashboard else ""

    def start(self, timeout: float = 90.0) -> TwoNodeCluster:
        import ray._private.services as services

        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.private_dir.mkdir(parents=True, exist_ok=True)
        self.address = f"{services.get_node_ip_address()}:{self.port}"
        common = ["--disable-usage-stats", "--block"]

        def ports() -> list[str]:  # each node's agents on ports of their own: the defaults may be taken already
            return [f"--{name}={free_port()}" for name in ("dashboard-agent-listen-port", "metrics-export-port",
                                                            "dashboard-agent-grpc-port", "runtime-env-agent-port")]

        dashboard = ([f"--dashboard-port={self.dashboard_port}", "--dashboard-host=127.0.0.1"] if self.dashboard_port
                     else ["--include-dashboard=false"])
        self.procs.append(subprocess.Popen(
            [RAY, "start", "--head", f"--port={self.port}", f"--num-cpus={self.head_cpus}", *dashboard, *ports(),
             f"--ray-client-server-port={free_port()}",
             f"--temp-dir={self.temp_dir}", *common], env=self.env, start_new_session=True,
            stdout=open(self.root / "head.log", "w"), stderr=subprocess.STDOUT))
        self._wait_nodes(1, timeout)
        worker = (f"mount -t tmpfs tmpfs {self.private_dir} && exec {RAY} start --address={self.address} "
                  f"--num-cpus={self.worker_cpus} {' '.join(common + ports())}")
        self.procs.append(subprocess.Popen(["unshare", "-m", "sh", "-c", worker], env=self.env, start_new_session=True,
                                           stdout=open(self.root / "worker.log", "w"), stderr=subprocess.STDOUT))
        self._wait_nodes(2, timeout)
        if self.dashboard:
            self._wait_job_server(timeout)
        return self

    def _wait_job_server(self, timeout: float) -> None:
        """Until a trivial job runs: the job server answers "no available agent" while the head's agent starts."""
        deadline = time.monotonic() + timeout
        while True:
            done = subprocess.run([RAY, "job", "submit", "--address", self.dashboard, "--", "true"], env=self.env,
                                  capture_output=True, text=True, timeout=timeout)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray job server did not start:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            time.sleep(2)

    def nodes_alive(self) -> int:
        code = (f"import ray; ray.init(address={self.address!r}, logging_level='ERROR'); "
                "print(sum(n['Alive'] for n in ray.nodes()))")
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=60)
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0

    def _wait_nodes(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.nodes_alive() < n:
            if time.monotonic() > deadline:
                logs = "".join((self.root / f).read_text()[-2000:] for f in ("head.log", "worker.log")
                               if (self.root / f).exists())
                raise RuntimeError(f"the Ray cluster did not reach {n} nodes:\n{logs}")
            time.sleep(1)

    def worker_pids(self, name: str) -> list[int]:
        """Pids of this cluster's Ray worker processes whose title contains `name` (e.g. 'MapBatches')."""
        return [p.pid for p in self._descendants()
                if name in " ".join(_cmdline(p)) and "ray::" in " ".join(_cmdline(p))]

    def _descendants(self) -> list:
        import psutil

        found = []
        for proc in self.procs:
            try:
                found += psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        return found

    def stop(self) -> None:
        import psutil

        leftovers = self._descendants()
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for p in leftovers:  # workers and helpers that outlived their raylet
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _cmdline(p) -> list[str]:
    try:
        return p.cmdline()
    except Exception:  # noqa: BLE001 - the process is gone or not ours to read
        return []
