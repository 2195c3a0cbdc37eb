"""vLLM's offline engine (`vllm.LLM`) with multimodal video input: the production backend on GPUs.

One engine per Ray actor; each call hands the whole batch to `LLM.generate`, whose continuous batching keeps the
GPU busy. Frames arrive decoded and resized (a CPU stage before the actor prepares them), passed as a
`(frames, metadata)` pair so vLLM does not decode or resample again.
"""

from __future__ import annotations

from captioner.backends.base import (
    CaptionBackend,
    CaptionRequest,
    CaptionSetupError,
    Generation,
    GenerationParams,
    chat_messages,
    one_line,
)
from captioner.prompts import Prompt


class VLLMBackend(CaptionBackend):
    """Args:
        model: a Hub id or local directory of any vLLM-supported VLM (Qwen2.5-VL, Qwen3-VL, ...).
        engine: keyword arguments for `vllm.LLM` (tensor_parallel_size, max_model_len, gpu_memory_utilization,
            dtype, enforce_eager, max_num_seqs, ...), from `caption.vllm` in the config.
        max_pixels: per-frame pixel budget handed to the model's processor.
        structured: hold every answer to the prompt's JSON schema (vLLM's structured outputs: xgrammar or
            guidance, chosen by the engine).
        max_field_chars: caps the schema's strings (captioner/schema.py).
    """

    name = "vllm"

    def __init__(self, model: str, *, engine: dict | None = None, max_pixels: int | None = None,
                 structured: bool = True, max_field_chars: int | None = None):
        super().__init__(model)
        self.engine = dict(engine or {})
        self.max_pixels = max_pixels
        self.structured, self.max_field_chars = structured, max_field_chars

    def setup(self) -> None:
        from curate.common.compat import ensure_torchvision

        ensure_torchvision()
        try:
            from vllm import LLM
        except ImportError as e:
            raise CaptionSetupError(f"caption.backend is vllm but vLLM cannot be imported ({e}); install it "
                                    "on GPU machines with `pip install 'vidcurate[vllm]'`, or use the "
                                    "transformers or openai backend") from None
        kwargs = dict(limit_mm_per_prompt={"video": 1, "image": 0}, **self.engine)
        if self.structured:
            kwargs.setdefault("structured_outputs_config", STRUCTURED_ENGINE)
        if self.max_pixels:
            kwargs.setdefault("mm_processor_kwargs", {})["max_pixels"] = self.max_pixels
        try:
            self.llm = LLM(model=self.model, **kwargs)
        except (OSError, ValueError) as e:
            raise CaptionSetupError(f"vLLM could not load caption model {self.model!r}: {one_line(e)}") from None
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, requests: list[CaptionRequest], prompt: Prompt,
                 params: GenerationParams) -> list[Generation]:
        from vllm import SamplingParams

        inputs = [engine_input(self.tokenizer, prompt, r) for r in requests]
        sampling = SamplingParams(**sampling_kwargs(prompt, params, self.structured, self.max_field_chars,
                                                    structured_type=_structured_type()))
        outputs = self.llm.generate(inputs, sampling, use_tqdm=False)
        return [Generation(text=o.outputs[0].text, finish_reason=o.outputs[0].finish_reason,
                           output_tokens=len(o.outputs[0].token_ids), prompt_tokens=len(o.prompt_token_ids or []))
                for o in outputs]


# The engine's structured-outputs settings: llguidance (as the transformers backend; it enforces the schema's
# string bounds) and compact JSON. Measured with the CPU build and the tiny model: with vLLM's default of any
# whitespace between fields, a random model fills the budget with tabs and newlines and every answer is cut
# off (`truncated`); compact, each closes within 72-113 tokens.
STRUCTURED_ENGINE = {"backend": "guidance", "disable_any_whitespace": True}


def engine_input(tokenizer, prompt: Prompt, r: CaptionRequest) -> dict:
    """One request as vLLM's prompt dict: the chat-templated text, and the video as a `(frames, metadata)` pair
    that vLLM does not decode or resample again (a text request: the text alone). Shared with Ray Data's LLM
    batch path (curate/job/caption_batch.py)."""
    if r.frames is None:
        return {"prompt": tokenizer.apply_chat_template(chat_messages(prompt, [], r.text), add_generation_prompt=True,
                                                        tokenize=False)}
    text = tokenizer.apply_chat_template(chat_messages(prompt, [{"type": "video"}]), add_generation_prompt=True,
                                         tokenize=False)
    return {"prompt": text, "multi_modal_data": {"video": (r.frames, _metadata(r))},
            "mm_processor_kwargs": {"do_sample_frames": False}}


def sampling_kwargs(prompt: Prompt, params: GenerationParams, structured: bool, max_field_chars: int | None,
                    *, structured_type=None) -> dict:
    """`vllm.SamplingParams` keyword arguments; with `structured`, the prompt's JSON schema as structured outputs
    (`structured_type`: vLLM's params class, `StructuredOutputsParams` from 0.10 on, else `GuidedDecodingParams`;
    None leaves it a plain dict `{"json": schema}`, as Ray Data's LLM stage takes it)."""
    kwargs = dict(max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
                  seed=params.seed)
    if structured:
        from captioner.schema import caption_schema

        spec = {"json": caption_schema(prompt, max_field_chars)}
        if structured_type is None:
            kwargs["structured_outputs"] = spec
        else:
            name = "structured_outputs" if structured_type.__name__ == "StructuredOutputsParams" else "guided_decoding"
            kwargs[name] = structured_type(**spec)
    return kwargs


def _structured_type():
    """The installed vLLM's structured-outputs params class (`structured_outputs` from 0.10, `guided_decoding`
    before)."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return StructuredOutputsParams
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return GuidedDecodingParams


def _metadata(r: CaptionRequest) -> dict:
    """What vLLM's video processors read about frames it did not decode itself."""
    n = len(r.frames)
    return {"total_num_frames": n, "fps": r.fps, "duration": n / r.fps if r.fps else r.duration_s,
            "frames_indices": list(range(n)), "video_backend": "vidcurate", "do_sample_frames": False}
