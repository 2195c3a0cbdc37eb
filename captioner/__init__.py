"""Dense video captioning with a vision-language model: prompts, the answer's JSON schema (`schema.py`) and its
enforcement while decoding (`grammar.py` for transformers; vLLM and OpenAI-compatible servers do it
themselves), backends (vLLM, OpenAI-compatible HTTP, transformers), JSON repair and caption checks, retries.

Nothing here knows about Ray or Lance: `curate/job/stages.py` wraps `Captioner` as the job's caption stage.

    from captioner import Captioner, make_backend, get_prompt
"""

from captioner.backends import CaptionRequest, CaptionSetupError, GenerationParams, make_backend, resolve_model
from captioner.captioner import Captioner, CaptionOutcome
from captioner.prompts import get_prompt

__all__ = ["CaptionOutcome", "CaptionRequest", "CaptionSetupError", "Captioner", "GenerationParams", "get_prompt",
           "make_backend", "resolve_model"]
