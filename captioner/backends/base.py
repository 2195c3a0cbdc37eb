"""The one interface every caption backend implements, and the values that cross it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from captioner.prompts import Prompt


class CaptionSetupError(ValueError):
    """A backend cannot start: model files missing, engine not installed, server unreachable. The message says
    what to do. A ValueError, so the CLI reports it in one line as it does bad settings."""


@dataclass
class CaptionRequest:
    """A clip to caption (its frames), or a text to rewrite (`frames` None, `text` set: the rewrite pass)."""

    clip_id: str
    frames: np.ndarray | None  # (T, H, W, 3) RGB uint8, already within the pixel budget
    fps: float = 0.0  # of `frames`, for the model's temporal position encoding
    duration_s: float = 0.0
    text: str | None = None  # appended to the prompt's question (the caption a rewrite starts from)


@dataclass
class GenerationParams:
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def for_attempt(self, attempt: int, retry_temperature: float) -> GenerationParams:
        """The settings of attempt `attempt` (0: these): retries sample at `retry_temperature` with a new seed
        each, so that a failed answer is not simply repeated. Both caption paths (the Captioner's own loop and
        Ray Data LLM's passes) retry by this rule."""
        if attempt == 0:
            return self
        return GenerationParams(self.max_new_tokens, retry_temperature, self.top_p, self.seed + attempt)


@dataclass
class Generation:
    text: str
    finish_reason: str | None = None  # "stop" | "length" | None
    output_tokens: int = 0
    prompt_tokens: int = 0
    error: str | None = None  # a one-line transport/engine error for this request


class CaptionBackend:
    """Turns a batch of clips into raw answers. Subclasses load their model in `setup()` (once per Ray actor)
    and must return one Generation per request, in order, recording per-request failures in `error` rather
    than raising, so one bad request never fails its batch."""

    name = "backend"

    def __init__(self, model: str):
        self.model = model
        self.label = model  # the name recorded in `caption_model` (make_backend marks the tiny model's)

    def setup(self) -> None:
        """Loads the model or connects. Raises CaptionSetupError with a fix in the message."""

    def generate(self, requests: list[CaptionRequest], prompt: Prompt,
                 params: GenerationParams) -> list[Generation]:
        raise NotImplementedError

    def messages(self, prompt: Prompt, video_part: list[dict], text: str | None = None) -> list[dict]:
        return chat_messages(prompt, video_part, text)


def chat_messages(prompt: Prompt, video_part: list[dict], text: str | None = None) -> list[dict]:
    """Chat messages in the OpenAI/transformers format: system prompt, then the video (none for a text request),
    then the question, then the request's own text."""
    question = prompt.user if text is None else f"{prompt.user}\n\n{text}"
    return [{"role": "system", "content": prompt.system},
            {"role": "user", "content": [*video_part, {"type": "text", "text": question}]}]


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]
