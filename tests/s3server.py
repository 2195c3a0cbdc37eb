"""A moto S3 server on loopback that a test can stop and start again (the object store going down)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time

import pyarrow.fs as pafs


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class MotoServer:
    """`start()` / `stop()` a moto server on 127.0.0.1:`port`; `env` points boto-style clients, pyarrow and
    Lance at it. moto keeps its buckets in memory: a restart starts empty."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true"}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def fs(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{self.port}", scheme="http", access_key="test",
                                 secret_key="test", region="us-east-1", allow_bucket_creation=True)

    def upload(self, local, key: str) -> str:
        with self.fs().open_output_stream(key) as f:
            f.write(local.read_bytes())
        return f"s3://{key}"


@contextlib.contextmanager
def environ(env: dict):
    """This process's environment with `env` over it (Lance and pyarrow read S3 settings from there)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
