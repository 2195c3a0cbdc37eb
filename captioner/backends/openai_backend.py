"""Any OpenAI-compatible chat endpoint (`vllm serve`, `python -m captioner.serve`, hosted APIs).

Frames go out as JPEG `image_url` parts in order (every OpenAI-compatible VLM server accepts images; not all
accept video). Requests run on a bounded thread pool; the `openai` client retries connection errors, 408/409/
429 and 5xx answers with exponential backoff and jitter, and each request has a timeout. A request that still
fails becomes that clip's error; the batch goes on.
"""

from __future__ import annotations

import base64
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from captioner.backends.base import (
    CaptionBackend,
    CaptionRequest,
    CaptionSetupError,
    Generation,
    GenerationParams,
    one_line,
)
from captioner.prompts import Prompt

log = logging.getLogger(__name__)


class OpenAIBackend(CaptionBackend):
    """Args:
        model: the model name the server knows.
        base_url: the server's `/v1` URL.
        api_key_env: environment variable holding the key (servers that need none accept any value).
        concurrency: requests in flight at once.
        timeout_s: per request; max_retries: transport retries per request (with backoff).
        structured: send the prompt's JSON schema as `response_format: {type: json_schema}`. vLLM's server
            enforces it; `transformers serve` ignores it (answers are then checked and repaired); a server that
            refuses the field gets it dropped, with a warning.
        max_field_chars: caps the schema's strings (captioner/schema.py).
    """

    name = "openai"

    def __init__(self, model: str, *, base_url: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout_s: float = 120.0, max_retries: int = 3, jpeg_quality: int = 90, structured: bool = True,
                 max_field_chars: int | None = None):
        super().__init__(model)
        self.structured, self.max_field_chars = structured, max_field_chars
        self.base_url, self.api_key_env = base_url, api_key_env
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.jpeg_quality = jpeg_quality

    def setup(self) -> None:
        import openai

        self.client = openai.OpenAI(base_url=self.base_url, api_key=os.environ.get(self.api_key_env) or "none",
                                    timeout=self.timeout_s, max_retries=self.max_retries)
        try:  # one cheap call: a server that is down fails here, once, instead of on every clip
            self.client.with_options(max_retries=1, timeout=min(self.timeout_s, 10.0)).models.list()
        except openai.APIConnectionError as e:
            raise CaptionSetupError(
                f"caption server at {self.base_url} is not reachable ({one_line(e.__cause__ or e)}); start one "
                f"(`vllm serve {self.model}` or `python -m captioner.serve MODEL`) or set caption.openai.base_url"
            ) from None
        except openai.APIStatusError:
            pass  # it answered: some servers do not implement /models
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="caption-http")

    def generate(self, requests: list[CaptionRequest], prompt: Prompt,
                 params: GenerationParams) -> list[Generation]:
        return list(self.pool.map(lambda r: self._one(r, prompt, params), requests))

    def _one(self, request: CaptionRequest, prompt: Prompt, params: GenerationParams) -> Generation:
        video = []
        if request.frames is not None:  # else a text request (the rewrite pass)
            video = [{"type": "text", "text": f"{len(request.frames)} frames of a {request.duration_s:.1f} s clip, "
                                              "in order:"},
                     *({"type": "image_url", "image_url": {"url": self._data_url(f)}} for f in request.frames)]
        import openai

        request = dict(model=self.model, messages=self.messages(prompt, video, request.text),
                       max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
                       seed=params.seed)
        try:
            try:
                resp = self.client.chat.completions.create(**request, **self._response_format(prompt))
            except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
                if not self.structured or "response_format" not in str(e):
                    raise
                log.warning("caption server %s refuses response_format (%s): answers are checked and repaired "
                            "instead", self.base_url, one_line(e))
                self.structured = False  # for every later request of this backend too
                resp = self.client.chat.completions.create(**request)
        except Exception as e:  # noqa: BLE001 - any failure is this clip's, after the client's own retries
            return Generation(text="", error=f"http: {one_line(e)}")
        choice = resp.choices[0]
        usage = resp.usage
        return Generation(text=choice.message.content or "", finish_reason=choice.finish_reason,
                          output_tokens=usage.completion_tokens if usage else 0,
                          prompt_tokens=usage.prompt_tokens if usage else 0)

    def _response_format(self, prompt: Prompt) -> dict:
        """`response_format: {type: json_schema}` with the prompt's schema, when structured."""
        if not self.structured:
            return {}
        from captioner.schema import caption_schema

        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": prompt.id.replace(".", "_"), "schema": caption_schema(prompt, self.max_field_chars),
            "strict": True}}}

    def _data_url(self, frame) -> str:
        import cv2

        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()
