"""A tiny, randomly initialised Qwen2.5-VL built locally: the `tiny` profile's captioner.

Same architecture and processor as `Qwen/Qwen2.5-VL-*-Instruct` (vision tower with windowed attention and M-RoPE,
Qwen2 decoder, the official chat template), at a few hundred thousand parameters. The tokenizer is a byte-level
BPE trained here on the prompt texts, so nothing is downloaded. Its output is random text: it exercises the
plumbing (batching, video inputs, retries, checks), never the wording.

The saved directory loads with `from_pretrained`, `transformers serve` and `vllm.LLM` alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TINY_NAME = "vidcurate-tiny-qwen2.5-vl"
# Bumped whenever the build changes, so a stale cache is rebuilt.
BUILD_VERSION = "2"  # 2: the rewrite prompt joined the tokenizer corpus

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]

# Qwen2.5-VL-Instruct's chat template (system default, image/video placeholders inside vision markers).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Small enough to build and run in a second on CPU; head_dim 32 because vLLM rejects 16.
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6]})
VISION = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, patch_size=14, spatial_merge_size=2,
              temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1], out_hidden_size=64,
              tokens_per_second=2)
# A small pixel budget keeps the vision sequence short (a few dozen tokens per frame pair).
PIXELS = dict(min_pixels=28 * 28 * 4, max_pixels=112 * 112)


def default_cache_dir() -> Path:
    base = os.environ.get("VIDCURATE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vidcurate")
    return Path(base) / f"{TINY_NAME}-v{BUILD_VERSION}"


def ensure_tiny_qwen(path: str | Path | None = None, *, seed: int = 0) -> Path:
    """Builds the tiny model at `path` (default: the user cache) unless it is already there; returns the path.

    The build is deterministic for a seed and written atomically (temp dir, then rename), so concurrent Ray
    actors either find a complete model or build their own copy.
    """
    target = Path(path) if path else default_cache_dir()
    if (target / "vidcurate_tiny.json").is_file():
        return target
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    _build(tmp, seed)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: theirs is identical
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build(out: Path, seed: int) -> None:
    import torch

    from curate.common.compat import ensure_torchvision

    ensure_torchvision()
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = _train_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={**TEXT, "vocab_size": len(tokenizer), "bos_token_id": ids["<|endoftext|>"],
                     "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]},
        vision_config=VISION, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)
    _processor(tokenizer).save_pretrained(out)
    (out / "vidcurate_tiny.json").write_text(json.dumps({"name": TINY_NAME, "build": BUILD_VERSION, "seed": seed,
                                                         "weights": "random"}))


def _train_tokenizer():
    """A byte-level BPE trained on the prompt texts, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from captioner.prompts import all_prompts

    corpus = [p.system for p in all_prompts()] + [p.user for p in all_prompts()]
    corpus += ['{"short_caption": "a red car drives down a wet street at night", "dense_caption": "", '
               '"main_subject": "", "background": "", "camera_motion": "static", "style": "", "lighting": ""}']
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL_TOKENS[1:], padding_side="left",
                                   model_max_length=4096)
    fast.chat_template = CHAT_TEMPLATE  # vLLM and `transformers serve` take the template from the tokenizer
    return fast


def _processor(tokenizer):
    from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    # The PIL image backend: torchvision.io cannot decode images where its compiled ops are missing.
    image = Qwen2VLImageProcessorPil(patch_size=14, temporal_patch_size=2, merge_size=2, **PIXELS)
    video = Qwen2VLVideoProcessor(patch_size=14, temporal_patch_size=2, merge_size=2, do_sample_frames=False,
                                  cap_pixels_per_frame=True,
                                  size={"shortest_edge": PIXELS["min_pixels"], "longest_edge": PIXELS["max_pixels"]})
    return Qwen2_5_VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video,
                               chat_template=CHAT_TEMPLATE)
