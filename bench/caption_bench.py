"""Caption throughput of each backend with the tiny Qwen2.5-VL, side by side in one script.

Every backend captions the same clips (8 frames of 448x252 each, resized to the tiny model's pixel budget)
with the same prompt and output budget; we report captions/s and output tokens/s, best of N.

1. `transformers` backend (batched, in-process) vs the bare `model.generate` on ready processor inputs:
   what our request building, decoding and bookkeeping cost on top of the engine.
2. `openai` backend (bounded concurrency) against a local `python -m captioner.serve` server process.
3. `vllm` backend, when vLLM imports in the Python given by --vllm-python (a separate venv: the CPU build of vLLM
   needs its own torch); run there as a subprocess on the same clips.

    .venv/bin/python bench/caption_bench.py [--clips 16] [--tokens 32] [--repeat 3] [--vllm-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_requests(n: int, seed: int = 0):
    from captioner import CaptionRequest

    rng = np.random.default_rng(seed)
    return [CaptionRequest(f"clip{i}", rng.integers(0, 255, (8, 252, 448, 3), np.uint8), 4.0, 2.0) for i in range(n)]


def run_backend(backend, requests, tokens: int, batch: int, repeat: int = 1) -> tuple[float, int]:
    """Best wall time over `repeat` runs, and the output tokens of one run."""
    from captioner import GenerationParams, get_prompt

    prompt, params = get_prompt("dense-v1"), GenerationParams(max_new_tokens=tokens)
    best, produced = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        gens = [g for i in range(0, len(requests), batch)
                for g in backend.generate(requests[i:i + batch], prompt, params)]
        best = min(best, time.perf_counter() - start)
        produced = sum(g.output_tokens for g in gens)
        errors = [g.error for g in gens if g.error]
        if errors:
            raise SystemExit(f"{backend.name}: {errors[0]}")
    return best, produced


def bare_generate(model_dir: str, requests, tokens: int, batch: int):
    """The engine alone: processor inputs built beforehand; the returned function times only `model.generate`."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.video_utils import VideoMetadata

    from captioner import get_prompt
    from captioner.backends.base import CaptionBackend

    proc = AutoProcessor.from_pretrained(model_dir)
    proc.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    text = proc.apply_chat_template(CaptionBackend("x").messages(get_prompt("dense-v1"), [{"type": "video"}]),
                                    add_generation_prompt=True, tokenize=False)
    batches = []
    for i in range(0, len(requests), batch):
        chunk = requests[i:i + batch]
        md = [VideoMetadata(total_num_frames=8, fps=4.0, height=252, width=448) for _ in chunk]
        batches.append(proc(text=[text] * len(chunk), videos=[r.frames for r in chunk], padding=True,
                            return_tensors="pt", videos_kwargs={"video_metadata": md, "do_sample_frames": False}))
    pad = model.generation_config.pad_token_id

    def once() -> tuple[float, int]:
        start, produced = time.perf_counter(), 0
        with torch.inference_mode():
            for inputs in batches:
                out = model.generate(**inputs, max_new_tokens=tokens, do_sample=False, pad_token_id=pad)
                produced += int((out[:, inputs["input_ids"].shape[1]:] != pad).sum())
        return time.perf_counter() - start, produced

    return once


def start_server(model_dir: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "captioner.serve", model_dir, "--host", "127.0.0.1", "--port",
                             str(port), "--device", "cpu"], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    for _ in range(240):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("caption server did not start")


VLLM_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
if __name__ == "__main__":
    from bench.caption_bench import make_requests, run_backend
    from captioner.backends.vllm_backend import VLLMBackend
    args = json.loads(sys.argv[2])
    b = VLLMBackend(args["model"], engine={"max_model_len": 4096, "enforce_eager": True, "dtype": "float32",
                                          "gpu_memory_utilization": 0.2})  # of CPU memory, on the CPU build
    b.setup()
    reqs = make_requests(args["clips"])
    run_backend(b, reqs[:2], args["tokens"], args["batch"], 1)  # warm-up
    print("RESULT", json.dumps(run_backend(b, reqs, args["tokens"], args["batch"], args["repeat"])))
"""


def run_vllm(python: str, model_dir: str, clips: int, tokens: int, batch: int, repeat: int):
    args = json.dumps({"model": model_dir, "clips": clips, "tokens": tokens, "batch": batch, "repeat": repeat})
    proc = subprocess.run([python, "-c", VLLM_CHILD, str(REPO), args], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_TARGET_DEVICE": "cpu"}, cwd=REPO)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        print("vllm run failed:\n" + (proc.stderr or proc.stdout)[-3000:])
        return None
    return tuple(json.loads(line[7:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--vllm-python", default=None, help="a Python whose environment has vLLM")
    args = ap.parse_args()

    from curate.common.compat import ensure_torchvision

    ensure_torchvision()
    from captioner.backends.openai_backend import OpenAIBackend
    from captioner.backends.transformers_backend import TransformersBackend
    from captioner.tiny import ensure_tiny_qwen

    model_dir = str(ensure_tiny_qwen())
    reqs = make_requests(args.clips)
    tb = TransformersBackend(model_dir, device="cpu")
    tb.setup()
    server, url = start_server(model_dir)
    try:
        ob = OpenAIBackend(model_dir, base_url=url, concurrency=4)
        ob.setup()
        runners = {
            "transformers backend": lambda: run_backend(tb, reqs, args.tokens, args.batch),
            "bare model.generate": bare_generate(model_dir, reqs, args.tokens, args.batch),
            "openai backend -> captioner.serve": lambda: run_backend(ob, reqs, args.tokens, len(reqs)),
        }
        for fn in runners.values():  # warm-up
            fn()
        rows = {name: (float("inf"), 0) for name in runners}
        for _ in range(args.repeat):  # interleaved, so a noisy moment hits every backend alike
            for name, fn in runners.items():
                wall, tokens = fn()
                rows[name] = min(rows[name], (wall, tokens))
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.vllm_python:
        result = run_vllm(args.vllm_python, model_dir, args.clips, args.tokens, args.batch, args.repeat)
        if result:
            rows["vllm backend (CPU build)"] = result

    print(f"\n{args.clips} clips x 8 frames, up to {args.tokens} new tokens, best of {args.repeat}")
    print(f"{'backend':38} {'wall s':>8} {'captions/s':>11} {'out tok/s':>10}")
    for name, (wall, tokens) in rows.items():
        print(f"{name:38} {wall:8.2f} {args.clips / wall:11.2f} {tokens / wall:10.1f}")
    ours, bare = rows["transformers backend"], rows["bare model.generate"]
    print(f"transformers backend / bare generate (tokens/s): {(ours[1] / ours[0]) / (bare[1] / bare[0]):.2f}")


if __name__ == "__main__":
    main()
