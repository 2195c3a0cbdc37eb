"""`python -m captioner.serve MODEL [--port 8000]`: an OpenAI-compatible caption server on this machine.

Runs `transformers serve` (FastAPI + uvicorn, from transformers itself) with this project's environment fixes
applied first: the torchvision shim, and PIL image decoding where torchvision's codecs are missing. It serves
the `openai` caption backend for small CPU runs and the tests; on GPUs prefer `vllm serve MODEL`.
All arguments after MODEL are passed to `transformers serve` (see `transformers serve --help`).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from curate.common.compat import prefer_pil_image_backend
    from curate.common.extras import import_extra

    for module in ("fastapi", "uvicorn", "accelerate"):  # what `transformers serve` needs besides transformers
        import_extra(module, extra="serve", feature="python -m captioner.serve")

    prefer_pil_image_backend()
    from transformers.cli.transformers import main as transformers_main

    sys.argv = ["transformers", "serve", *(sys.argv[1:] if argv is None else argv)]
    transformers_main()


if __name__ == "__main__":
    main()
