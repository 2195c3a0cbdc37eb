"""Running on a Ray cluster: connecting with what workers need, and making sure every node reaches the data.

- `init_ray` starts a local Ray (the default) or connects to `address`. A cluster's workers get this project's
  packages (`runtime_env.py_modules`) and the environment they need to reach storage and models
  (`runtime_env.env_vars`, see `worker_env`), which never goes into the dataset, its run records or logs.
- `check_reachable` refuses, on a cluster of more than one node, an output or input that is a path on this
  machine only: a worker on another node would write to, or look in, its own disk. A shared filesystem (NFS,
  a FUSE mount of a bucket) is accepted when declared (`--shared-fs`) and a probe confirms it: a task pinned
  to each node writes a file there, which the driver must see, and checks that it sees the first local input.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
from pathlib import Path

from curate.common.uris import is_remote
from curate.video.sources import Source

log = logging.getLogger(__name__)

# Shipped to a remote cluster's workers with the job (`--address`).
PACKAGES = ("curate", "filters", "captioner", "train")
# Environment variables workers need: object-store settings and credentials, model hubs.
ENV_PREFIXES = ("AWS_", "GOOGLE_", "GCS_", "AZURE_", "HF_", "HUGGING_FACE_", "LANCE_")
# Set by Ray's job supervisor for a submitted job's entrypoint: the job's config, its runtime_env included.
JOB_CONFIG_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"


class ClusterPathError(ValueError):
    """An input or output that not every node of the cluster can reach."""


def worker_env(extra_names: list[str] = ()) -> dict[str, str]:
    """The driver's variables that workers need: every ENV_PREFIXES one, and those named in `extra_names` (the API
    key variables the config names)."""
    names = set(extra_names)
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) or k in names}


def init_ray(address: str | None, *, env: dict[str, str] | None = None) -> None:
    """Starts a local Ray (default) or connects to `address` ("auto", "HOST:PORT", "ray://host:10001").

    A local Ray's workers inherit this process's environment; a cluster's get `env` through the job's
    runtime_env, and this project's packages through `py_modules` (third-party dependencies must be installed
    on the nodes: the same image, or `pip install vidcurate`).
    """
    import ray

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return
    kwargs = dict(include_dashboard=False, ignore_reinit_error=True, logging_level=logging.WARNING)
    if address:
        ray.init(address=address, runtime_env=job_runtime_env(env or {}), **kwargs)
    else:
        ray.init(**kwargs)


def job_runtime_env(env: dict[str, str]) -> dict:
    """The runtime_env a cluster's workers get: this project's packages and `env`, less what the job that
    `ray job submit` started already gives them (Ray refuses a driver runtime_env that repeats the job's keys)."""
    job = json.loads(os.environ.get(JOB_CONFIG_VAR, "{}")).get("runtime_env") or {}
    given = job.get("env_vars") or {}
    runtime_env: dict = {"env_vars": {k: v for k, v in env.items() if k not in given}}
    if "py_modules" not in job:
        # Package directories, not module objects: Ray deep-copies this to merge it with the job's.
        runtime_env["py_modules"] = [str(Path(importlib.import_module(p).__file__).parent) for p in PACKAGES]
    return runtime_env


def alive_nodes() -> list[dict]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def on_each_node(fn, nodes: list[dict], *args, timeout_s: float = 120.0) -> list:
    """`fn(*args)` run once on each of `nodes` (pinned there, reserving no CPU); the results in the nodes' order."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(fn)
    return ray.get([task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False),
                                 num_cpus=0).remote(*args) for n in nodes], timeout=timeout_s)


def _probe_write(directory: str, token: str) -> None:
    """Writes a file named after the node it runs on."""
    import ray

    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / f"{ray.get_runtime_context().get_node_id()}-{token}").write_text(token)


def _probe_sees(path: str) -> bool:
    return os.path.exists(path)


def check_reachable(output: str, sources: list[Source], *, address: str | None, shared_fs: bool) -> None:
    """Raises ClusterPathError when a local output or input cannot be reached from every node (module docstring).

    Nothing to check with a local Ray, or when all inputs and the output are object-store URIs.
    """
    local_inputs = [s.uri for s in sources if not is_remote(s.uri)]
    local_output = not is_remote(output)
    if not address or not (local_output or local_inputs):
        return
    nodes = alive_nodes()
    client = address.startswith("ray://")  # the driver runs off the cluster: even one node has its own disk
    if len(nodes) <= 1 and not client:
        return
    what, path = ("output", output) if local_output else ("input", local_inputs[0])
    if not shared_fs:
        raise ClusterPathError(
            f"the {what} {path} is a path on this machine, but the Ray cluster at {address} has {len(nodes)} nodes, "
            "each with its own disk: use object-store URIs (s3://..., gs://..., az://...), or put the data on a "
            "filesystem every node mounts and pass --shared-fs")
    token = secrets.token_hex(8)
    probe_dir = os.path.join(os.path.abspath(output) if local_output else os.path.dirname(local_inputs[0]),
                             ".curate-probe")
    on_each_node(_probe_write, nodes, probe_dir, token)
    hosts = [f"{n['NodeManagerAddress']} ({n['NodeID'][:8]})" for n in nodes]
    names = [os.path.join(probe_dir, f"{n['NodeID']}-{token}") for n in nodes]
    missing = [h for h, name in zip(hosts, names) if not os.path.exists(name)]
    if local_inputs:
        sees = on_each_node(_probe_sees, nodes, local_inputs[0])
        missing += [f"{h} (cannot see {local_inputs[0]})" for h, ok in zip(hosts, sees) if not ok]
    for name in names:
        try:
            os.remove(name)
        except OSError:
            pass
    if missing:
        raise ClusterPathError(
            f"--shared-fs was given, but a file written under {probe_dir} by node {', '.join(missing)} does not "
            "reach this machine: the path is not shared; use object-store URIs or a filesystem every node mounts")
    log.info("shared filesystem confirmed on %d nodes under %s", len(nodes), probe_dir)
