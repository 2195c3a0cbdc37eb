"""The captioning loop: batch → backend → checks → retry what failed → one outcome per clip.

Retries run at `retry_temperature` with a new seed, so a greedy answer that failed is not simply repeated. A
clip whose answer fails every attempt gets `status: failed` with the last reason; it is never dropped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from captioner.backends.base import CaptionBackend, CaptionRequest, Generation, GenerationParams, one_line
from captioner.checks import check_caption
from captioner.prompts import Prompt

OK, FAILED = "ok", "failed"


@dataclass
class CaptionOutcome:
    clip_id: str
    status: str  # ok | failed
    fields: dict[str, str] = field(default_factory=dict)  # the last answer's parsed fields, passed or not
    error: str | None = None
    attempts: int = 0
    output_tokens: int = 0

    def columns(self, *, model: str, prompt_id: str) -> dict:
        """The caption columns of a clips.lance row: the texts only when the caption passed; `caption_json`
        whenever the answer parsed (a rejected one too, so its reason can be read against what it said)."""
        f = self.fields
        ok = self.status == OK
        return {
            "caption": f.get("dense_caption") if ok else None, "caption_short": f.get("short_caption") if ok else None,
            "caption_json": json.dumps(f, ensure_ascii=False) if f else None,
            "caption_status": self.status, "caption_error": self.error, "caption_attempts": self.attempts,
            "caption_tokens": self.output_tokens, "caption_model": model, "prompt_id": prompt_id,
        }


@dataclass
class BatchStats:
    generate_s: float = 0.0  # in backend calls; the caption stage shares it over its clips (caption_gen_s)


class Captioner:
    """Args:
        backend: a set-up CaptionBackend.
        prompt: what to ask.
        params: first-attempt generation settings.
        max_retries: further attempts for answers that fail the checks.
        retry_temperature: sampling temperature of retries.
        min_words: the least words of a dense caption.
    """

    def __init__(self, backend: CaptionBackend, prompt: Prompt, params: GenerationParams, *, max_retries: int = 2,
                 retry_temperature: float = 0.7, min_words: int = 8):
        self.backend, self.prompt, self.params = backend, prompt, params
        self.max_retries, self.retry_temperature, self.min_words = max_retries, retry_temperature, min_words
        self.stats = BatchStats()

    def __call__(self, requests: list[CaptionRequest]) -> list[CaptionOutcome]:
        outcomes = [CaptionOutcome(r.clip_id, FAILED) for r in requests]
        pending = list(range(len(requests)))
        for attempt in range(1 + self.max_retries):
            if not pending:
                break
            params = self.params.for_attempt(attempt, self.retry_temperature)
            generations = self._generate([requests[i] for i in pending], params)
            still = []
            for i, gen in zip(pending, generations):
                out = outcomes[i]
                out.attempts += 1
                out.output_tokens += gen.output_tokens
                if gen.error:
                    out.error = gen.error
                    still.append(i)
                    continue
                check = check_caption(gen.text, self.prompt.fields, finish_reason=gen.finish_reason,
                                      min_words=self.min_words)
                out.fields = check.fields  # a rejected answer keeps what it said, beside its reason
                if check.ok:
                    out.status, out.error = OK, None
                else:
                    out.error = check.reason
                    still.append(i)
            pending = still
        return outcomes

    def _generate(self, requests: list[CaptionRequest], params: GenerationParams) -> list[Generation]:
        """One backend call; if the whole batch raises, each request is tried alone so one bad clip cannot
        fail its neighbours."""
        start = time.perf_counter()
        try:
            gens = self.backend.generate(requests, self.prompt, params)
        except Exception as e:  # noqa: BLE001 - recorded per clip below
            if len(requests) == 1:
                gens = [Generation(text="", error=f"{self.backend.name}: {one_line(e)}")]
            else:
                return [g for r in requests for g in self._generate([r], params)]
        self.stats.generate_s += time.perf_counter() - start
        return gens
