"""`transformers` locally: `AutoModelForImageTextToText` + its processor, for CPU and small runs."""

from __future__ import annotations

from captioner.backends.base import CaptionBackend, CaptionRequest, CaptionSetupError, Generation, GenerationParams
from captioner.prompts import Prompt


class TransformersBackend(CaptionBackend):
    """Batched `generate` with left padding; frames go in as a video (decoded by us, not by the processor); a
    batch of text requests (frames None: the rewrite pass) goes in as text alone.

    Args:
        model: a local directory or a Hub id already in the local cache.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        dtype: "auto" (bf16 on CUDA, fp32 on CPU), "bfloat16", "float16" or "float32".
        structured: hold every answer to the prompt's JSON schema while decoding (captioner/grammar.py).
        max_field_chars: caps the schema's strings (captioner/schema.py).
    """

    name = "transformers"

    def __init__(self, model: str, *, device: str = "auto", dtype: str = "auto", structured: bool = True,
                 max_field_chars: int | None = None):
        super().__init__(model)
        self.device, self.dtype = device, dtype
        self.structured, self.max_field_chars = structured, max_field_chars

    def setup(self) -> None:
        import torch

        from curate.common.compat import ensure_torchvision

        ensure_torchvision()
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        dtype = (torch.bfloat16 if device == "cuda" else torch.float32) if self.dtype == "auto" \
            else getattr(torch, self.dtype)
        try:
            self.processor = AutoProcessor.from_pretrained(self.model)
            self.net = AutoModelForImageTextToText.from_pretrained(self.model, dtype=dtype).to(device).eval()
        except OSError as e:
            raise CaptionSetupError(
                f"caption model {self.model!r} could not be loaded ({str(e).splitlines()[0]}); set caption.model to "
                "a local model directory, or download it first (huggingface-cli download MODEL)") from None
        self.processor.tokenizer.padding_side = "left"  # decoder-only batching: new tokens line up at the end
        self.torch_device = device
        self.eos = set(_as_list(self.net.generation_config.eos_token_id))
        self.pad = self.net.generation_config.pad_token_id

    def generate(self, requests: list[CaptionRequest], prompt: Prompt,
                 params: GenerationParams) -> list[Generation]:
        import torch
        from transformers.video_utils import VideoMetadata

        if requests[0].frames is None:  # text requests (the rewrite pass): one chat per request, no video
            texts = [self.processor.apply_chat_template(self.messages(prompt, [], r.text), add_generation_prompt=True,
                                                        tokenize=False) for r in requests]
            inputs = self.processor(text=texts, padding=True, return_tensors="pt")
        else:
            text = self.processor.apply_chat_template(self.messages(prompt, [{"type": "video"}]),
                                                      add_generation_prompt=True, tokenize=False)
            metadata = [VideoMetadata(total_num_frames=len(r.frames), fps=r.fps, height=r.frames.shape[1],
                                      width=r.frames.shape[2]) for r in requests]
            inputs = self.processor(text=[text] * len(requests), videos=[r.frames for r in requests], padding=True,
                                    return_tensors="pt",
                                    videos_kwargs={"video_metadata": metadata, "do_sample_frames": False})
        inputs = inputs.to(self.torch_device)
        sampling = dict(do_sample=True, temperature=params.temperature, top_p=params.top_p) \
            if params.temperature > 0 else dict(do_sample=False)
        if self.structured:
            from transformers import LogitsProcessorList

            from captioner.grammar import SchemaLogitsProcessor
            from captioner.schema import caption_schema

            sampling["logits_processor"] = LogitsProcessorList([SchemaLogitsProcessor(
                self.processor.tokenizer, caption_schema(prompt, self.max_field_chars), len(requests))])
        torch.manual_seed(params.seed)
        with torch.inference_mode():
            out = self.net.generate(**inputs, max_new_tokens=params.max_new_tokens, pad_token_id=self.pad,
                                    **sampling)
        prompt_len = inputs["input_ids"].shape[1]
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, n_prompt in zip(out[:, prompt_len:].tolist(), prompt_tokens):
            stop = next((i for i, t in enumerate(row) if t in self.eos), None)
            tokens = row if stop is None else row[:stop]
            results.append(Generation(
                text=self.processor.tokenizer.decode(tokens, skip_special_tokens=True),
                finish_reason="length" if stop is None and len(row) >= params.max_new_tokens else "stop",
                output_tokens=len(tokens) + (stop is not None), prompt_tokens=int(n_prompt)))
        return results


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
