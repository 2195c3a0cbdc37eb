"""The job's configuration: pydantic models, embedded defaults, YAML overrides, field-named errors.

The field defaults below *are* the embedded defaults: `configs/default.yaml` documents them and a test keeps the
two in step. A YAML file only needs the fields it changes. Every section rejects unknown fields and checks its
values when built and when assigned; every error names the dotted field that is wrong. A profile is applied in
one place, `apply_profile`, whatever the caller passes.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from curate.common.typed_config import ConfigError, build, config_error, none_is_empty, str_values

Profile = Literal["default", "tiny"]
PROFILES = get_args(Profile)
Device = Literal["auto", "cpu", "cuda"]
Engine = Literal["auto", "onnxruntime", "openvino"]  # the learned scorers' runtime (filters/onnx.py)
Precision = Literal["f32", "bf16"]
SECRET_KEY = re.compile(r"secret|key|token|password|credential|session|sas|signature", re.IGNORECASE)


class Section(BaseModel):
    """A config section: strict scalars (a string is no number, `true` no integer; an integer is a number), no
    unknown fields, values checked on assignment too. A bad assignment raises ConfigError naming the field; a bad
    constructor call pydantic's ValidationError (a ValueError too): `build(cls, data)` turns it into ConfigError."""

    model_config = ConfigDict(strict=True, extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_section(cls, value: Any, info: ValidationInfo) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        return none_is_empty(value) if isinstance(annotation, type) and issubclass(annotation, Section) else value

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as e:
            raise config_error(e, type(self)) from None


class StageResources(Section):
    """Ray resources of one stage: the same knobs for every stage.

    `concurrency` is the number of parallel tasks (or actors, for stages that hold a model); `None` lets Ray
    decide. `batch_size` is the number of rows a call receives; `None` passes each block as it arrives. A
    number makes Ray Data wait until that many rows are ready, which batches better for models but holds
    finished work back from the commit.
    """

    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    concurrency: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    memory_gb: float | None = Field(None, gt=0)  # logical memory Ray reserves per task/actor (a model's footprint)
    # A task whose worker process dies (killed, out of memory, a lost node) runs again this many times; an
    # actor is restarted as often. Failures inside the code are handled per video instead (curate/job/failures.py).
    max_retries: int = Field(3, ge=0, le=100)


class ResourcesConfig(Section):
    """Per-stage resources. `analyze` decodes each source once; `encode` is the only second read.

    Stages with identical resources are fused by Ray Data into one task per block (one video), so with the
    defaults a video goes from decode to its fragments in one worker with no copies between stages, and is
    committed as soon as it is done. Giving a stage its own resources (GPU scorers, say) makes it a separate
    operator with its own pool.
    """

    analyze: StageResources = Field(default_factory=StageResources)
    score: StageResources = Field(default_factory=StageResources)
    # A model stage: an actor pool (model loaded once per actor) that batches rows for the encoder. Its memory
    # reservation also keeps Ray from fusing the CPU stages into it (which would run them in its pool alone).
    aesthetic: StageResources = Field(default_factory=lambda: StageResources(concurrency=1, batch_size=16,
                                                                             memory_gb=2.0))
    policy: StageResources = Field(default_factory=StageResources)
    # Frame preparation for captioning (CPU tasks) runs apart from the captioner's actors, so the GPU is not
    # kept waiting on JPEG decoding and resizing. `num_gpus: 0` on `caption` means: as the backend needs
    # (vllm: tensor_parallel_size GPUs; transformers: one GPU when the cluster has any; openai: none).
    caption_prep: StageResources = Field(default_factory=StageResources)
    caption: StageResources = Field(default_factory=lambda: StageResources(concurrency=1, batch_size=32,
                                                                           memory_gb=2.0))
    # The rewrite pass's actors (caption.rewrite), GPUs as for `caption`.
    rewrite: StageResources = Field(default_factory=lambda: StageResources(concurrency=1, batch_size=32,
                                                                           memory_gb=2.0))
    # The CLIP text tower that scores captions against their clips (caption.clip_score); CPU unless num_gpus. It
    # reserves no CPU: one text forward a caption is light, and a third actor holding CPUs would leave no node a
    # whole CPU for analysis on small clusters (measured: a 1 + 2 CPU two-node cluster stalled). It takes blocks
    # as they come: gathering a batch of captions would hold finished videos back from their commit.
    caption_align: StageResources = Field(default_factory=lambda: StageResources(num_cpus=0.0, concurrency=1,
                                                                                 memory_gb=1.0))
    encode: StageResources = Field(default_factory=StageResources)
    write: StageResources = Field(default_factory=StageResources)


class InputConfig(Section):
    """How inputs are found and which files are refused before decoding."""

    extensions: list[str] = Field(default_factory=lambda: [
        ".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".ogv", ".flv", ".wmv", ".3gp"])
    # 8192 x 8192: larger frames are refused at probe time rather than exhausting a worker's memory.
    max_pixels: int = Field(8192 * 8192, gt=0)
    # A read that fails for a reason that may pass (network, object store, I/O) is tried again this many times,
    # waiting retry_backoff_s, then twice that, ...; still failing, the video is `retryable` for the next run.
    retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(1.0, ge=0)
    # Decoding (the analysis pass, and the encoder's second read): `auto` uses NVDEC where the stage has a GPU
    # (resources.analyze / resources.encode num_gpus > 0), `cuda` always tries it, `cpu` never. A worker where
    # it cannot be had says so once and decodes on the CPU (curate/video/gpu.py).
    decode_device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("extensions")
    @classmethod
    def _dotted(cls, value: list[str]) -> list[str]:
        if not all(e.startswith(".") for e in value):
            raise ValueError("entries must start with '.'")
        return value


class ScenesConfig(Section):
    """Scene detection and the spans made from it.

    Detection runs on frames downscaled to `detect_width` (PySceneDetect's own CLI works near 256 px too).
    `trim_frames` drops frames on each side of a detected cut, where soft transitions bleed; video start and
    end are not trimmed. Scenes longer than `max_scene_s` are split into equal parts.
    """

    detector: Literal["adaptive", "content", "transnetv2"] = "adaptive"
    detect_width: int = Field(256, ge=32, le=1920)
    min_scene_frames: int = Field(15, ge=1)  # PySceneDetect's min_scene_len: no two cuts closer than this
    adaptive_threshold: float = 3.0
    adaptive_min_content_val: float = 15.0
    adaptive_window: int = Field(2, ge=1)
    content_threshold: float = 27.0
    transnet_threshold: float = Field(0.5, gt=0, lt=1)
    trim_frames: int = Field(0, ge=0)
    max_scene_s: float = Field(30.0, gt=0)


class SamplesConfig(Section):
    """Frames kept from the analysis pass for later stages (scoring, motion, overlays, captioning).

    Samples are taken at a fixed rate (the first frame is always one), at most `max_side` pixels on the long
    side. `keyframes_per_scene` of them are stored as small JPEGs in `candidates.lance`.
    """

    fps: float = Field(4.0, gt=0, le=60)
    max_side: int = Field(448, ge=32, le=2048)
    keyframes_per_scene: int = Field(3, ge=1, le=16)
    keyframe_max_side: int = Field(320, ge=32)  # at most max_side
    jpeg_quality: int = Field(85, ge=1, le=100)

    @field_validator("keyframe_max_side")
    @classmethod
    def _within_max_side(cls, value: int, info: ValidationInfo) -> int:
        if "max_side" in info.data and value > info.data["max_side"]:
            raise ValueError("must be <= samples.max_side")
        return value


class EncodeConfig(Section):
    """How kept clips are written into `clips.lance`.

    `reencode` (default) gives frame-accurate H.264 at most `max_short_side` pixels on the short side and
    `max_fps` (variable-frame-rate sources become constant rate). `copy` remuxes the source packets without
    re-encoding: fast and lossless, but a clip can only start on a keyframe, so its recorded span is snapped
    back to the keyframe before the scene start.
    """

    mode: Literal["reencode", "copy"] = "reencode"
    codec: str = "libx264"
    crf: int = Field(20, ge=0, le=51)
    preset: str = "veryfast"
    max_short_side: int = Field(720, ge=16)
    max_fps: float = Field(30.0, gt=0)
    threads: int = Field(2, ge=1)
    # Identical bytes whenever a clip is encoded again (a resumed or retried video, a re-run): libx264's
    # macroblock tree is switched off, since in this build it gives slightly different output from the same frames
    # at some frame widths (426 px: a few encodes in a hundred differ, under CPU load). It costs about a quarter
    # more bytes at the same `crf` (BENCHMARKS.md); `false` keeps the smaller files.
    repeatable: bool = True
    # `auto`: NVENC (`gpu_codec` with `gpu_options`, FFmpeg's names) where the encode stage has a GPU
    # (resources.encode.num_gpus > 0); `cuda`: always try it; `cpu`: `codec`. A worker without NVENC says so once
    # and encodes with `codec`. NVENC's constant-quality `cq` is not libx264's `crf`: compare by the bench.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    gpu_codec: str = "h264_nvenc"
    gpu_options: dict[str, str] = Field(default_factory=lambda: {"preset": "p4", "rc": "vbr", "cq": "23"})


class AestheticConfig(Section):
    """The aesthetic scorer: an open_clip image tower and a LAION head (see filters/aesthetic.py).

    `clip_pretrained` is an open_clip tag (downloaded on first use) or a checkpoint path; `head_path` a path or
    URL. The `tiny` profile ignores both and builds tiny random models. `device: auto` uses a GPU actor pool
    when the Ray cluster has GPUs, CPU actors otherwise.
    """

    enabled: bool = True
    clip_model: str = "ViT-L-14"
    clip_pretrained: str = "openai"
    head: Literal["improved", "linear"] = "improved"
    head_path: str = ("https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
                      "sac+logos+ava1-l14-linearMSE.pth")
    reduce: Literal["mean", "min"] = "mean"  # over the clip's keyframes
    device: Device = "auto"


class OcrConfig(Section):
    """Text in the picture: PP-OCRv4 text detection from `rapidocr-onnxruntime` (weights in the wheel; see
    filters/ocr.py). `frames` samples spread over each scene are read (the middle one first: a scene with no text
    there stops); text found in at least `persist` of them is persistent (subtitles, handles, tickers). Frames
    are scaled to `max_side` for detection. `recognize` also reads the persistent text into `ocr_text`;
    `stock_sites` reads the persistent text in the middle of still shots, which is otherwise taken for a sign, and
    counts it as an overlay when it names a stock-footage site (filters/stock_sites.py)."""

    enabled: bool = True
    frames: int = Field(3, ge=2, le=16)
    max_side: int = Field(448, ge=160, le=1920)
    persist: float = Field(0.5, gt=0, le=1)
    box_threshold: float = Field(0.5, gt=0, lt=1)
    recognize: bool = False
    stock_sites: bool = True  # persistent text mid-frame on a still shot is read: a stock site's name is an overlay
    device: Device = "auto"  # cuda: ONNX Runtime's CUDA provider, from onnxruntime-gpu
    engine: Engine = "auto"  # auto: ONNX Runtime on CUDA, else OpenVINO on CPU (filters/onnx.py)
    precision: Precision = "f32"  # bf16: OpenVINO only, faster on AMX/AVX512-BF16 CPUs, margins move


class SafetyConfig(Section):
    """NSFW screening with NudeNet's detector (`nudenet` 3.4.2, weights in the wheel; see filters/safety.py)
    on up to `frames` keyframes per scene (the middle one first; the others when it shows a person); detections
    under `min_score` are ignored."""

    enabled: bool = True
    frames: int = Field(3, ge=1, le=16)
    min_score: float = Field(0.3, gt=0, lt=1)
    device: Device = "auto"
    engine: Engine = "auto"
    precision: Precision = "f32"


class ScoringConfig(Section):
    """Which scorers run. All read the analysis pass's samples or keyframes; none opens the video again. The
    weight-free scorers (quality, motion, watermark) read at most `max_samples` samples spread over a scene;
    `dedup_hashes` hashes every sample (the signature of `curate dedup --level near`)."""

    aesthetic: AestheticConfig = Field(default_factory=AestheticConfig)
    quality: bool = True
    motion: bool = True
    watermark: bool = True
    ocr: OcrConfig = Field(default_factory=OcrConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    max_samples: int = Field(12, ge=3, le=256)
    dedup_hashes: bool = True  # a perceptual hash of every sample, for `curate dedup --level near`


class VLLMEngineConfig(Section):
    """Options of vLLM's engine for the `vllm` caption backend, and how the job drives it.

    `batch_api: ray_data_llm` (the default) runs it through Ray Data's LLM batch API (curate/job/caption_batch.py):
    vLLM's async engine with `max_concurrent_batches` batches in flight per replica, replicas scaling between
    `min_replicas` and `max_replicas`, tensor parallelism in placement groups, retries as passes over the failed
    rows only. `actor` is our own actor pool around `vllm.LLM` (curate/job/stages.py CaptionStage), one batch at
    a time; it alone supports `caption.long_clips: windows`.
    """

    batch_api: Literal["ray_data_llm", "actor"] = "ray_data_llm"
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int = Field(16384, ge=512)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_num_seqs: int = Field(64, ge=1)
    dtype: str = "auto"
    enforce_eager: bool = False
    min_replicas: int = Field(1, ge=1)  # ray_data_llm: engine replicas (each tensor_parallel_size GPUs)
    max_replicas: int = Field(1, ge=1)
    max_concurrent_batches: int = Field(8, ge=1)  # ray_data_llm: batches in flight per replica
    retry_replicas: int = Field(1, ge=1)  # ray_data_llm: the engine pool of each retry pass


class OpenAIEndpointConfig(Section):
    """An OpenAI-compatible server for the `openai` caption backend (`vllm serve MODEL`, for example)."""

    base_url: str = "http://localhost:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding the key; servers without auth accept any
    concurrency: int = Field(8, ge=1)  # requests in flight per caption actor
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)  # transport retries per request, with exponential backoff

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


Backend = Literal["vllm", "openai", "transformers"]


class RewriteConfig(Section):
    """Optional second pass: a text LLM rewrites each caption that passed into the two a text-to-video model
    trains on (a short one and a dense paragraph), stored beside the original (`rewrite_short`, `rewrite_dense`,
    with `rewrite_model` and `rewrite_prompt_id`). It goes through the caption backends (text requests, the same
    schema-constrained decoding and checks); what is not set here is `caption`'s: `backend`, `model` (a VLM
    rewrites text too), the vllm/openai sections, retries. Under `tiny`, the tiny model."""

    enabled: bool = False
    backend: Backend | None = None  # null: caption.backend
    model: str | None = None  # null: caption.model
    prompt: str = "rewrite-v1"
    max_new_tokens: int = Field(384, ge=16)
    temperature: float = Field(0.0, ge=0)


class CaptionConfig(Section):
    """Dense captions of kept clips from a vision-language model (see captioner/).

    Frames come from the analysis pass's samples (`samples.fps`): `frames` spread uniformly over the clip, or
    one every 1/`frame_rate` s (at most `frames`), each downscaled to `max_pixels`. `prompt` is an id from
    captioner/prompts or a YAML path. A failed answer (bad JSON, repetitive, refusal, too short) is retried up
    to `max_retries` times at `retry_temperature`; a clip whose caption still fails is kept, with
    `caption_status: failed` and the reason. The `tiny` profile captions with a tiny random Qwen2.5-VL through
    the transformers backend unless `backend` is set.
    """

    enabled: bool = True
    backend: Backend = "vllm"
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    prompt: str = "dense-v1"
    frames: int = Field(8, ge=1, le=64)
    frame_rate: float | None = Field(None, gt=0)
    # A clip needing more than `frames` frames at `frame_rate`: `sample` spreads `frames` over it (one request),
    # `windows` captions consecutive windows of `frames` frames at the rate and merges them (captioner/windows.py).
    long_clips: Literal["sample", "windows"] = "sample"
    max_pixels: int = Field(448 * 448, ge=28 * 28)
    max_new_tokens: int = Field(512, ge=16)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    retry_temperature: float = Field(0.7, ge=0)
    max_retries: int = Field(2, ge=0, le=10)
    min_words: int = Field(8, ge=0)
    # Hold every answer to the prompt's JSON schema while decoding (vLLM structured outputs, OpenAI
    # response_format, llguidance for transformers): valid JSON with every field, whatever the model.
    structured: bool = True
    max_field_chars: int | None = Field(None, ge=1)  # caps the schema's strings (the dense caption: 3x)
    # Score each caption against its clip with the aesthetic stage's CLIP (`caption_clip_score`), then apply
    # policy.min_caption_clip_score before encoding. Needs scoring.aesthetic (the clip's embedding).
    clip_score: bool = True
    device: Device = "auto"  # transformers backend
    vllm: VLLMEngineConfig = Field(default_factory=VLLMEngineConfig)
    openai: OpenAIEndpointConfig = Field(default_factory=OpenAIEndpointConfig)
    rewrite: RewriteConfig = Field(default_factory=RewriteConfig)

    def rewrite_section(self) -> CaptionConfig:
        """This section as the rewrite pass runs it: its backend, model, prompt and budget in place of ours."""
        r = self.rewrite
        return self.model_copy(update={"backend": r.backend or self.backend, "model": r.model or self.model,
                                       "prompt": r.prompt, "max_new_tokens": r.max_new_tokens,
                                       "temperature": r.temperature})

    @field_validator("long_clips")
    @classmethod
    def _windows_need_a_rate(cls, value: str, info: ValidationInfo) -> str:
        if value == "windows" and not info.data.get("frame_rate"):
            raise ValueError("windows are cut at caption.frame_rate: set it too (for example 1.0)")
        return value


Share = Annotated[float | None, Field(ge=0, le=1)]  # a fraction or probability threshold; None is off


class PolicyConfig(Section):
    """Keep/drop thresholds over stored scores; `null` switches a threshold off.

    These are the product's policy defaults (filters.policy.KeepPolicy has none of its own). Every reason that
    applies is recorded, so `curate refilter` can move thresholds later without decoding or scoring again. Under
    the `tiny` profile `min_aesthetic` and `min_caption_clip_score` default to off (random weights give meaningless
    scores) unless a config sets them.
    """

    min_clip_s: float = Field(1.0, ge=0)
    max_clip_s: float = 60.0  # more than min_clip_s
    min_aesthetic: float | None = 4.5
    min_motion: float | None = 0.002  # diagonals/s: below this the clip is a still
    max_motion: float | None = None
    max_jitter: float | None = None
    max_watermark_prob: Share = 0.5
    max_text_area: Share = 0.1  # share of the frame covered by text, on average over the frames read
    max_persistent_text_area: Share = 0.003  # text that stays put: overlays, subtitles, tickers
    max_nsfw: Share = 0.6  # NudeNet finds "buttocks" in round red cartoon bushes at 0.56
    min_sharpness: float | None = None
    max_dark_fraction: Share = 0.9
    max_bright_fraction: Share = 0.9
    max_blank_fraction: Share = 0.5
    max_frozen_fraction: Share = None
    # Applied after captioning, to `caption_clip_score` (filters/alignment.py): the CLIP cosine of the short
    # caption and the clip. Not measured here (no real CLIP weights on this machine): CLIPScore (Hessel et al.,
    # 2021) puts human captions near 0.3 with ViT-B/32; 0.18 drops only captions about something else.
    min_caption_clip_score: float | None = Field(0.18, ge=-1, le=1)
    drop_duplicates: bool = True  # drop the scenes `curate dedup` marked as another's duplicate (`duplicate_of`)
    score_only: bool = False  # keep everything, still record every reason that would apply

    @field_validator("max_clip_s")
    @classmethod
    def _above_min(cls, value: float, info: ValidationInfo) -> float:
        if "min_clip_s" in info.data and not value > info.data["min_clip_s"]:
            raise ValueError("must be > min_clip_s")
        return value


DedupLevel = Literal["exact", "near", "semantic"]
RANKABLE = ("aesthetic", "sharpness", "duration_s", "motion", "num_frames")


class DedupConfig(Section):
    """Duplicate groups across the whole dataset (`curate dedup`, and the end of `curate run` with `on_run`).

    `levels` are unioned: exact (the same decoded frames), near (perceptual hashes of every sample, distance
    as a share of differing bits; see filters/dedup.py for what was measured), semantic (cosine distance of CLIP
    embeddings; off by default: it needs real CLIP weights to mean anything). Each group keeps one scene: the
    first by, in order, passing every other policy rule, then `rank_by` (higher is better), then clip_id; the
    others get `duplicate_of` and, with `policy.drop_duplicates`, the drop reason `duplicate`. Scenes are split
    into k-means partitions of about `partition_rows` (each a Ray task; memory bounded by that size) and
    compared within their `probes` nearest partitions, as SemDeDup does.
    """

    on_run: bool = False
    levels: list[DedupLevel] = Field(default_factory=lambda: ["exact", "near"], min_length=1)
    near_threshold: float = Field(0.12, ge=0, le=1)
    semantic_threshold: float = Field(0.05, ge=0, le=2)
    rank_by: list[Literal[RANKABLE]] = Field(default_factory=lambda: ["aesthetic", "sharpness", "duration_s"])
    partition_rows: int = Field(1024, ge=2)
    probes: int = Field(2, ge=1, le=8)


class Config(Section):
    """Everything a run needs besides its inputs and output URI."""

    profile: Profile = "default"
    input: InputConfig = Field(default_factory=InputConfig)
    scenes: ScenesConfig = Field(default_factory=ScenesConfig)
    samples: SamplesConfig = Field(default_factory=SamplesConfig)
    encode: EncodeConfig = Field(default_factory=EncodeConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    caption: CaptionConfig = Field(default_factory=CaptionConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    # The driver commits written fragments at most this often (and always at the end): a crash loses at most
    # this much finished work, and fewer commits keep the version list short.
    commit_interval_s: float = Field(5.0, ge=0)
    # Passed to Lance for object-store output URIs (for example {"aws_region": "us-east-1"}). Values of keys that
    # look like secrets are never written into the dataset (see `to_yaml(redact=True)`).
    storage_options: Annotated[dict[str, str], BeforeValidator(str_values)] = Field(default_factory=dict)
    # A running job refreshes its `runs` row this often; a run whose heartbeat is older than `run_lease_s` is
    # taken for dead, and the rows it left without a `videos` row are removed by the next run.
    heartbeat_interval_s: float = Field(30.0, gt=0)
    run_lease_s: float = 300.0  # more than twice heartbeat_interval_s
    # Ray Data merges the rows a stage yields into blocks of at most this size before the next stage sees them:
    # small, so that a worker holds a few encoded clips at a time, not Ray's default 128 MiB of them.
    max_block_mb: float = Field(8.0, gt=0)

    @field_validator("run_lease_s")
    @classmethod
    def _outlives_heartbeats(cls, value: float, info: ValidationInfo) -> float:
        if "heartbeat_interval_s" in info.data and not value > 2 * info.data["heartbeat_interval_s"]:
            raise ValueError("must be more than twice heartbeat_interval_s")
        return value

    def check(self) -> Config:
        """Checks every field again, cross-field rules too (an assignment checks the field it sets, not the
        fields whose rules name it); returns self.

        Raises:
            ConfigError: naming the first field that is wrong.
        """
        build(Config, self.to_dict())
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def to_yaml(self, *, redact: bool = False) -> str:
        """The settings as YAML; with `redact`, storage options that look like secrets are masked (what run
        records store)."""
        data = self.to_dict()
        if redact:
            data["storage_options"] = {k: ("***" if SECRET_KEY.search(k) else v)
                                       for k, v in data["storage_options"].items()}
        return yaml.safe_dump(data, sort_keys=False)

    def digest(self) -> str:
        """A short hash of every setting, recorded with each run."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def apply_profile(cfg: Config, profile: str | None = None) -> Config:
    """Sets `profile` on `cfg` (when given) and applies what that profile changes, in place; returns `cfg`.

    Every way to a Config goes through here. The `tiny` profile runs tiny random models on CPU: their aesthetic
    and caption-alignment scores mean nothing (`policy.min_aesthetic`, `policy.min_caption_clip_score` off),
    and captions come from the transformers backend with short schema-bound answers (`caption.backend`,
    `caption.max_new_tokens`, `caption.max_field_chars`). Each applies only where the section does not set the
    field itself: in a file, in overrides, in a constructor or by assignment (pydantic's `model_fields_set`).
    """
    if profile is not None:
        cfg.profile = profile
    if cfg.profile == "tiny":
        _unless_set(cfg.policy, min_aesthetic=None, min_caption_clip_score=None)
        # a random model never closes a string on its own: short strings make the schema close its answer
        # within the budget (captioner/schema.py fits_budget)
        _unless_set(cfg.caption, backend="transformers", max_new_tokens=448, max_field_chars=32)
    return cfg


def _unless_set(section: Section, **values: Any) -> None:
    for name, value in values.items():
        if name not in section.model_fields_set:
            setattr(section, name, value)


def config_from_dict(data: dict[str, Any] | None) -> Config:
    """Builds and checks a Config from a (possibly partial) mapping over the embedded defaults, its profile
    applied."""
    return apply_profile(build(Config, data or {}))


def load_config(path: str | Path | None = None, *, profile: str | None = None,
                overrides: dict[str, Any] | None = None) -> Config:
    """Loads the embedded defaults, then a YAML file's fields, then `overrides`, then `profile`.

    Raises:
        ConfigError: the file is missing or not YAML, or a field is unknown, mistyped or out of range.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = loaded or {}
    data = _deep_merge(data, overrides or {})
    if profile is not None:
        data["profile"] = profile
    return config_from_dict(data)


def resolve_config(config: Config | str | Path | None, profile: str | None = None) -> Config:
    """A checked Config from a Config (copied, so the caller's object stays as it was) or a YAML path/None,
    with `profile` applied over it."""
    if not isinstance(config, Config):
        return load_config(config, profile=profile)
    return apply_profile(config.model_copy(deep=True), profile).check()


def config_for_dataset(run_yaml: str | None, profile: str | None = None) -> Config:
    """The config a command over an existing dataset works with when it is given none: the one its latest run
    recorded (`run_yaml`: so that its thresholds and models stay as they were), else the defaults. Storage
    options are never taken from the record: their secrets were redacted there.

    Raises:
        ConfigError: the recorded config no longer validates (pass a config file instead).
    """
    if not run_yaml:
        return resolve_config(None, profile)
    data = yaml.safe_load(run_yaml) or {}
    data.pop("storage_options", None)
    if profile is not None:
        data["profile"] = profile
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"the dataset's recorded config no longer validates ({e}); pass -c FILE") from None


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def default_yaml() -> str:
    """The embedded defaults as YAML (what `curate config` prints and `configs/default.yaml` holds)."""
    return Config().to_yaml()
