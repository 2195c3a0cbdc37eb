"""Caption backends behind one interface (`CaptionBackend.generate`): vLLM, OpenAI-compatible HTTP, transformers."""

from __future__ import annotations

from captioner.backends.base import CaptionBackend, CaptionRequest, CaptionSetupError, Generation, GenerationParams

BACKENDS = ("vllm", "openai", "transformers")
# `caption.vllm` fields about how the job drives the engine, not options of `vllm.LLM`
JOB_ONLY = {"batch_api", "min_replicas", "max_replicas", "max_concurrent_batches", "retry_replicas"}

__all__ = ["BACKENDS", "CaptionBackend", "CaptionRequest", "CaptionSetupError", "Generation", "GenerationParams",
           "make_backend", "preflight", "resolve_model"]


def resolve_model(cfg, profile: str) -> tuple[str, str]:
    """(model path or id to load, name recorded in `caption_model`) for a `caption:` config section.

    Under the `tiny` profile the model is the locally built tiny Qwen2.5-VL, unless the backend is `openai`
    (the server decides what it serves; the configured name is sent and recorded).
    """
    if profile == "tiny" and cfg.backend != "openai":
        from captioner.tiny import TINY_NAME, ensure_tiny_qwen

        return str(ensure_tiny_qwen()), f"{TINY_NAME} (random weights)"
    return cfg.model, cfg.model


def make_backend(cfg, profile: str) -> CaptionBackend:
    """The backend a `caption:` config section names, not yet set up (call `setup()` where it will run)."""
    model, label = resolve_model(cfg, profile)
    backend = _construct(cfg, model)
    backend.label = label
    return backend


def _construct(cfg, model: str) -> CaptionBackend:
    if cfg.backend == "vllm":
        from captioner.backends.vllm_backend import VLLMBackend

        engine = cfg.vllm.model_dump(exclude=JOB_ONLY)
        return VLLMBackend(model, engine=engine, max_pixels=cfg.max_pixels, structured=cfg.structured,
                           max_field_chars=cfg.max_field_chars)
    if cfg.backend == "openai":
        from captioner.backends.openai_backend import OpenAIBackend

        o = cfg.openai
        return OpenAIBackend(model, base_url=o.base_url, api_key_env=o.api_key_env, concurrency=o.concurrency,
                             timeout_s=o.timeout_s, max_retries=o.max_retries, structured=cfg.structured,
                             max_field_chars=cfg.max_field_chars)
    if cfg.backend == "transformers":
        from captioner.backends.transformers_backend import TransformersBackend

        return TransformersBackend(model, device=cfg.device, structured=cfg.structured,
                                   max_field_chars=cfg.max_field_chars)
    raise ValueError(f"unknown caption backend {cfg.backend!r} (known: {', '.join(BACKENDS)})")


def preflight(cfg, profile: str) -> None:
    """Driver-side check before any work: the model can be had (or the server answers). Builds the tiny model
    once here so the actors find it in the cache.

    Raises:
        CaptionSetupError: with the fix in the message.
    """
    from pathlib import Path

    if cfg.backend == "openai":
        make_backend(cfg, profile).setup()
        return
    model, _ = resolve_model(cfg, profile)
    if Path(model).is_dir():
        return
    if Path(model).exists() or model.startswith((".", "/", "~")):
        raise CaptionSetupError(f"caption.model {model!r} is not a model directory")
    try:
        from huggingface_hub import hf_hub_download

        hf_hub_download(model, "config.json")  # from the local cache when present
    except Exception as e:  # noqa: BLE001 - offline, unknown id, no access: all say the same thing to the user
        raise CaptionSetupError(
            f"caption model {model!r} is not a local directory and cannot be downloaded here "
            f"({type(e).__name__}); download it where there is access (`hf download {model} --local-dir DIR`) "
            "and set caption.model to DIR") from None
