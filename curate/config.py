"""The job's configuration: typed dataclasses, embedded defaults, YAML overrides, field-named errors.

The dataclass defaults below *are* the embedded defaults: `configs/default.yaml` documents them and a test keeps
the two in step. A YAML file only needs the fields it changes. Every error names the dotted field that is wrong.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curate.common.typed_config import ConfigError, build
from curate.common.typed_config import require as _require

PROFILES = ("default", "tiny")
SECRET_KEY = re.compile(r"secret|key|token|password|credential|session|sas|signature", re.IGNORECASE)




@dataclass
class StageResources:
    """Ray resources of one stage: the same knobs for every stage.

    `concurrency` is the number of parallel tasks (or actors, for stages that hold a model); `None` lets Ray
    decide. `batch_size` is the number of rows a call receives; `None` passes each block as it arrives. A
    number makes Ray Data wait until that many rows are ready, which batches better for models but holds
    finished work back from the commit.
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    concurrency: int | None = None
    batch_size: int | None = None
    memory_gb: float | None = None  # logical memory Ray reserves per task/actor (a model's footprint)
    # A task whose worker process dies (killed, out of memory, a lost node) runs again this many times; an
    # actor is restarted as often. Failures inside the code are handled per video instead (curate/job/failures.py).
    max_retries: int = 3

    def check(self, name: str) -> None:
        _require(self.num_cpus >= 0, f"{name}.num_cpus", "must be >= 0", self.num_cpus)
        _require(self.num_gpus >= 0, f"{name}.num_gpus", "must be >= 0", self.num_gpus)
        _require(self.concurrency is None or self.concurrency >= 1, f"{name}.concurrency", "must be >= 1",
                 self.concurrency)
        _require(self.memory_gb is None or self.memory_gb > 0, f"{name}.memory_gb", "must be > 0",
                 self.memory_gb)
        _require(self.batch_size is None or self.batch_size >= 1, f"{name}.batch_size", "must be >= 1", self.batch_size)
        _require(0 <= self.max_retries <= 100, f"{name}.max_retries", "must be in [0, 100]", self.max_retries)


@dataclass
class ResourcesConfig:
    """Per-stage resources. `analyze` decodes each source once; `encode` is the only second read.

    Stages with identical resources are fused by Ray Data into one task per block (one video), so with the
    defaults a video goes from decode to its fragments in one worker with no copies between stages, and is
    committed as soon as it is done. Giving a stage its own resources (GPU scorers, say) makes it a separate
    operator with its own pool.
    """

    analyze: StageResources = field(default_factory=StageResources)
    score: StageResources = field(default_factory=StageResources)
    # A model stage: an actor pool (model loaded once per actor) that batches rows for the encoder. Its memory
    # reservation also keeps Ray from fusing the CPU stages into it (which would run them in its pool alone).
    aesthetic: StageResources = field(default_factory=lambda: StageResources(concurrency=1, batch_size=16,
                                                                             memory_gb=2.0))
    policy: StageResources = field(default_factory=StageResources)
    # Frame preparation for captioning (CPU tasks) runs apart from the captioner's actors, so the GPU is not
    # kept waiting on JPEG decoding and resizing. `num_gpus: 0` on `caption` means: as the backend needs
    # (vllm: tensor_parallel_size GPUs; transformers: one GPU when the cluster has any; openai: none).
    caption_prep: StageResources = field(default_factory=StageResources)
    caption: StageResources = field(default_factory=lambda: StageResources(concurrency=1, batch_size=32,
                                                                           memory_gb=2.0))
    encode: StageResources = field(default_factory=StageResources)
    write: StageResources = field(default_factory=StageResources)

    def check(self, name: str) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name).check(f"{name}.{f.name}")


@dataclass
class InputConfig:
    """How inputs are found and which files are refused before decoding."""

    extensions: list[str] = field(default_factory=lambda: [
        ".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".ogv", ".flv", ".wmv", ".3gp"])
    # 8192 x 8192: larger frames are refused at probe time rather than exhausting a worker's memory.
    max_pixels: int = 8192 * 8192
    # A read that fails for a reason that may pass (network, object store, I/O) is tried again this many times,
    # waiting retry_backoff_s, then twice that, ...; still failing, the video is `retryable` for the next run.
    retries: int = 2
    retry_backoff_s: float = 1.0

    def check(self, name: str) -> None:
        _require(all(e.startswith(".") for e in self.extensions), f"{name}.extensions",
                 "entries must start with '.'", self.extensions)
        _require(self.max_pixels > 0, f"{name}.max_pixels", "must be > 0", self.max_pixels)
        _require(0 <= self.retries <= 10, f"{name}.retries", "must be in [0, 10]", self.retries)
        _require(self.retry_backoff_s >= 0, f"{name}.retry_backoff_s", "must be >= 0", self.retry_backoff_s)


@dataclass
class ScenesConfig:
    """Scene detection and the spans made from it.

    Detection runs on frames downscaled to `detect_width` (PySceneDetect's own CLI works near 256 px too).
    `trim_frames` drops frames on each side of a detected cut, where soft transitions bleed; video start and
    end are not trimmed. Scenes longer than `max_scene_s` are split into equal parts.
    """

    detector: str = "adaptive"  # adaptive | content | transnetv2
    detect_width: int = 256
    min_scene_frames: int = 15  # PySceneDetect's min_scene_len: no two cuts closer than this
    adaptive_threshold: float = 3.0
    adaptive_min_content_val: float = 15.0
    adaptive_window: int = 2
    content_threshold: float = 27.0
    transnet_threshold: float = 0.5
    trim_frames: int = 0
    max_scene_s: float = 30.0

    def check(self, name: str) -> None:
        _require(self.detector in ("adaptive", "content", "transnetv2"), f"{name}.detector",
                 "must be one of adaptive, content, transnetv2", self.detector)
        _require(32 <= self.detect_width <= 1920, f"{name}.detect_width", "must be in [32, 1920]", self.detect_width)
        _require(self.min_scene_frames >= 1, f"{name}.min_scene_frames", "must be >= 1", self.min_scene_frames)
        _require(self.adaptive_window >= 1, f"{name}.adaptive_window", "must be >= 1", self.adaptive_window)
        _require(0 < self.transnet_threshold < 1, f"{name}.transnet_threshold", "must be in (0, 1)",
                 self.transnet_threshold)
        _require(self.trim_frames >= 0, f"{name}.trim_frames", "must be >= 0", self.trim_frames)
        _require(self.max_scene_s > 0, f"{name}.max_scene_s", "must be > 0", self.max_scene_s)


@dataclass
class SamplesConfig:
    """Frames kept from the analysis pass for later stages (scoring, motion, overlays, captioning).

    Samples are taken at a fixed rate (the first frame is always one), at most `max_side` pixels on the long
    side. `keyframes_per_scene` of them are stored as small JPEGs in `candidates.lance`.
    """

    fps: float = 4.0
    max_side: int = 448
    keyframes_per_scene: int = 3
    keyframe_max_side: int = 320
    jpeg_quality: int = 85

    def check(self, name: str) -> None:
        _require(0 < self.fps <= 60, f"{name}.fps", "must be in (0, 60]", self.fps)
        _require(32 <= self.max_side <= 2048, f"{name}.max_side", "must be in [32, 2048]", self.max_side)
        _require(1 <= self.keyframes_per_scene <= 16, f"{name}.keyframes_per_scene", "must be in [1, 16]",
                 self.keyframes_per_scene)
        _require(32 <= self.keyframe_max_side <= self.max_side, f"{name}.keyframe_max_side",
                 "must be in [32, samples.max_side]", self.keyframe_max_side)
        _require(1 <= self.jpeg_quality <= 100, f"{name}.jpeg_quality", "must be in [1, 100]", self.jpeg_quality)


@dataclass
class EncodeConfig:
    """How kept clips are written into `clips.lance`.

    `reencode` (default) gives frame-accurate H.264 at most `max_short_side` pixels on the short side and
    `max_fps` (variable-frame-rate sources become constant rate). `copy` remuxes the source packets without
    re-encoding: fast and lossless, but a clip can only start on a keyframe, so its recorded span is snapped
    back to the keyframe before the scene start.
    """

    mode: str = "reencode"  # reencode | copy
    codec: str = "libx264"
    crf: int = 20
    preset: str = "veryfast"
    max_short_side: int = 720
    max_fps: float = 30.0
    # A fixed encoder thread count keeps the bytes identical between runs (resume compares them).
    threads: int = 2

    def check(self, name: str) -> None:
        _require(self.mode in ("reencode", "copy"), f"{name}.mode", "must be reencode or copy", self.mode)
        _require(0 <= self.crf <= 51, f"{name}.crf", "must be in [0, 51]", self.crf)
        _require(self.max_short_side >= 16, f"{name}.max_short_side", "must be >= 16", self.max_short_side)
        _require(self.max_fps > 0, f"{name}.max_fps", "must be > 0", self.max_fps)
        _require(self.threads >= 1, f"{name}.threads", "must be >= 1", self.threads)


@dataclass
class AestheticConfig:
    """The aesthetic scorer: an open_clip image tower and a LAION head (see filters/aesthetic.py).

    `clip_pretrained` is an open_clip tag (downloaded on first use) or a checkpoint path; `head_path` a path or
    URL. The `tiny` profile ignores both and builds tiny random models. `device: auto` uses a GPU actor pool
    when the Ray cluster has GPUs, CPU actors otherwise.
    """

    enabled: bool = True
    clip_model: str = "ViT-L-14"
    clip_pretrained: str = "openai"
    head: str = "improved"  # improved | linear
    head_path: str = ("https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
                      "sac+logos+ava1-l14-linearMSE.pth")
    reduce: str = "mean"  # mean | min over the clip's keyframes
    device: str = "auto"  # auto | cpu | cuda

    def check(self, name: str) -> None:
        _require(self.head in ("improved", "linear"), f"{name}.head", "must be improved or linear", self.head)
        _require(self.reduce in ("mean", "min"), f"{name}.reduce", "must be mean or min", self.reduce)
        _require(self.device in ("auto", "cpu", "cuda"), f"{name}.device", "must be auto, cpu or cuda",
                 self.device)


@dataclass
class OcrConfig:
    """Text in the picture: PP-OCRv4 text detection from `rapidocr-onnxruntime` (weights in the wheel; see
    filters/ocr.py). `frames` samples spread over each scene are read (the middle one first: a scene with no text
    there stops); text found in at least `persist` of them is persistent (subtitles, handles, tickers). Frames
    are scaled to `max_side` for detection. `recognize` also reads the persistent text into `ocr_text`."""

    enabled: bool = True
    frames: int = 3
    max_side: int = 448
    persist: float = 0.5
    box_threshold: float = 0.5
    recognize: bool = False
    device: str = "auto"  # auto | cpu | cuda (ONNX Runtime's CUDA provider, from onnxruntime-gpu)

    def check(self, name: str) -> None:
        _require(2 <= self.frames <= 16, f"{name}.frames", "must be in [2, 16]", self.frames)
        _require(160 <= self.max_side <= 1920, f"{name}.max_side", "must be in [160, 1920]", self.max_side)
        _require(0 < self.persist <= 1, f"{name}.persist", "must be in (0, 1]", self.persist)
        _require(0 < self.box_threshold < 1, f"{name}.box_threshold", "must be in (0, 1)", self.box_threshold)
        _require(self.device in ("auto", "cpu", "cuda"), f"{name}.device", "must be auto, cpu or cuda", self.device)


@dataclass
class SafetyConfig:
    """NSFW screening with NudeNet's detector (`nudenet` 3.4.2, weights in the wheel; see filters/safety.py)
    on up to `frames` keyframes per scene (the middle one first; the others when it shows a person); detections
    under `min_score` are ignored."""

    enabled: bool = True
    frames: int = 3
    min_score: float = 0.3
    device: str = "auto"  # auto | cpu | cuda

    def check(self, name: str) -> None:
        _require(1 <= self.frames <= 16, f"{name}.frames", "must be in [1, 16]", self.frames)
        _require(0 < self.min_score < 1, f"{name}.min_score", "must be in (0, 1)", self.min_score)
        _require(self.device in ("auto", "cpu", "cuda"), f"{name}.device", "must be auto, cpu or cuda", self.device)


@dataclass
class ScoringConfig:
    """Which scorers run. All read the analysis pass's samples or keyframes; none opens the video again. The
    weight-free scorers (quality, motion, watermark) read at most `max_samples` samples spread over a scene."""

    aesthetic: AestheticConfig = field(default_factory=AestheticConfig)
    quality: bool = True
    motion: bool = True
    watermark: bool = True
    ocr: OcrConfig = field(default_factory=OcrConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    max_samples: int = 12

    def check(self, name: str) -> None:
        self.aesthetic.check(f"{name}.aesthetic")
        self.ocr.check(f"{name}.ocr")
        self.safety.check(f"{name}.safety")
        _require(3 <= self.max_samples <= 256, f"{name}.max_samples", "must be in [3, 256]", self.max_samples)


@dataclass
class VLLMEngineConfig:
    """Options of vLLM's offline engine (`vllm.LLM`) for the `vllm` caption backend."""

    tensor_parallel_size: int = 1
    max_model_len: int = 16384
    gpu_memory_utilization: float = 0.9
    max_num_seqs: int = 64
    dtype: str = "auto"
    enforce_eager: bool = False

    def check(self, name: str) -> None:
        _require(self.tensor_parallel_size >= 1, f"{name}.tensor_parallel_size", "must be >= 1",
                 self.tensor_parallel_size)
        _require(self.max_model_len >= 512, f"{name}.max_model_len", "must be >= 512", self.max_model_len)
        _require(0 < self.gpu_memory_utilization <= 1, f"{name}.gpu_memory_utilization", "must be in (0, 1]",
                 self.gpu_memory_utilization)
        _require(self.max_num_seqs >= 1, f"{name}.max_num_seqs", "must be >= 1", self.max_num_seqs)


@dataclass
class OpenAIEndpointConfig:
    """An OpenAI-compatible server for the `openai` caption backend (`vllm serve MODEL`, for example)."""

    base_url: str = "http://localhost:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding the key; servers without auth accept any
    concurrency: int = 8  # requests in flight per caption actor
    timeout_s: float = 120.0
    max_retries: int = 3  # transport retries per request, with exponential backoff

    def check(self, name: str) -> None:
        _require(self.base_url.startswith(("http://", "https://")), f"{name}.base_url", "must be an http(s) URL",
                 self.base_url)
        _require(self.concurrency >= 1, f"{name}.concurrency", "must be >= 1", self.concurrency)
        _require(self.timeout_s > 0, f"{name}.timeout_s", "must be > 0", self.timeout_s)
        _require(self.max_retries >= 0, f"{name}.max_retries", "must be >= 0", self.max_retries)


@dataclass
class CaptionConfig:
    """Dense captions of kept clips from a vision-language model (see captioner/).

    Frames come from the analysis pass's samples (`samples.fps`): `frames` spread uniformly over the clip, or
    one every 1/`frame_rate` s (at most `frames`), each downscaled to `max_pixels`. `prompt` is an id from
    captioner/prompts or a YAML path. A failed answer (bad JSON, repetitive, refusal, too short) is retried up
    to `max_retries` times at `retry_temperature`; a clip whose caption still fails is kept, with
    `caption_status: failed` and the reason. The `tiny` profile captions with a tiny random Qwen2.5-VL through
    the transformers backend unless `backend` is set.
    """

    enabled: bool = True
    backend: str = "vllm"  # vllm | openai | transformers
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    prompt: str = "dense-v1"
    frames: int = 8
    frame_rate: float | None = None
    max_pixels: int = 448 * 448
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    retry_temperature: float = 0.7
    max_retries: int = 2
    min_words: int = 8
    device: str = "auto"  # transformers backend: auto | cpu | cuda
    vllm: VLLMEngineConfig = field(default_factory=VLLMEngineConfig)
    openai: OpenAIEndpointConfig = field(default_factory=OpenAIEndpointConfig)

    def check(self, name: str) -> None:
        _require(self.backend in ("vllm", "openai", "transformers"), f"{name}.backend",
                 "must be vllm, openai or transformers", self.backend)
        _require(1 <= self.frames <= 64, f"{name}.frames", "must be in [1, 64]", self.frames)
        _require(self.frame_rate is None or self.frame_rate > 0, f"{name}.frame_rate", "must be > 0 or null",
                 self.frame_rate)
        _require(self.max_pixels >= 28 * 28, f"{name}.max_pixels", "must be >= 784", self.max_pixels)
        _require(self.max_new_tokens >= 16, f"{name}.max_new_tokens", "must be >= 16", self.max_new_tokens)
        _require(self.temperature >= 0, f"{name}.temperature", "must be >= 0", self.temperature)
        _require(self.retry_temperature >= 0, f"{name}.retry_temperature", "must be >= 0", self.retry_temperature)
        _require(0 < self.top_p <= 1, f"{name}.top_p", "must be in (0, 1]", self.top_p)
        _require(0 <= self.max_retries <= 10, f"{name}.max_retries", "must be in [0, 10]", self.max_retries)
        _require(self.min_words >= 0, f"{name}.min_words", "must be >= 0", self.min_words)
        _require(self.device in ("auto", "cpu", "cuda"), f"{name}.device", "must be auto, cpu or cuda", self.device)
        self.vllm.check(f"{name}.vllm")
        self.openai.check(f"{name}.openai")


@dataclass
class PolicyConfig:
    """Keep/drop thresholds over stored scores; `null` switches a threshold off.

    Every reason that applies is recorded, so `curate refilter` can move thresholds later without decoding or
    scoring again. Under the `tiny` profile `min_aesthetic` defaults to off (random weights give meaningless
    aesthetic scores) unless a config sets it.
    """

    min_clip_s: float = 1.0
    max_clip_s: float = 60.0
    min_aesthetic: float | None = 4.5
    min_motion: float | None = 0.002  # diagonals/s: below this the clip is a still
    max_motion: float | None = None
    max_jitter: float | None = None
    max_watermark_prob: float | None = 0.5
    max_text_area: float | None = 0.1  # share of the frame covered by text, on average over the frames read
    max_persistent_text_area: float | None = 0.003  # text that stays put: overlays, subtitles, tickers
    max_nsfw: float | None = 0.6  # NudeNet finds "buttocks" in round red cartoon bushes at 0.56
    min_sharpness: float | None = None
    max_dark_fraction: float | None = 0.9
    max_bright_fraction: float | None = 0.9
    max_blank_fraction: float | None = 0.5
    max_frozen_fraction: float | None = None
    score_only: bool = False  # keep everything, still record every reason that would apply

    def check(self, name: str) -> None:
        _require(self.min_clip_s >= 0, f"{name}.min_clip_s", "must be >= 0", self.min_clip_s)
        _require(self.max_clip_s > self.min_clip_s, f"{name}.max_clip_s", "must be > min_clip_s", self.max_clip_s)
        for f in ("max_watermark_prob", "max_text_area", "max_persistent_text_area", "max_nsfw", "max_dark_fraction",
                  "max_bright_fraction", "max_blank_fraction", "max_frozen_fraction"):
            v = getattr(self, f)
            _require(v is None or 0 <= v <= 1, f"{name}.{f}", "must be in [0, 1] or null", v)


@dataclass
class Config:
    """Everything a run needs besides its inputs and output URI."""

    profile: str = "default"
    input: InputConfig = field(default_factory=InputConfig)
    scenes: ScenesConfig = field(default_factory=ScenesConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    # The driver commits written fragments at most this often (and always at the end): a crash loses at most
    # this much finished work, and fewer commits keep the version list short.
    commit_interval_s: float = 5.0
    # Passed to Lance for object-store output URIs (for example {"aws_region": "us-east-1"}). Values of keys that
    # look like secrets are never written into the dataset (see `to_yaml(redact=True)`).
    storage_options: dict[str, str] = field(default_factory=dict)
    # A running job refreshes its `runs` row this often; a run whose heartbeat is older than `run_lease_s` is
    # taken for dead, and the rows it left without a `videos` row are removed by the next run.
    heartbeat_interval_s: float = 30.0
    run_lease_s: float = 300.0
    # Ray Data merges the rows a stage yields into blocks of at most this size before the next stage sees them:
    # small, so that a worker holds a few encoded clips at a time, not Ray's default 128 MiB of them.
    max_block_mb: float = 8.0

    def check(self) -> Config:
        _require(self.profile in PROFILES, "profile", f"must be one of {', '.join(PROFILES)}", self.profile)
        _require(self.commit_interval_s >= 0, "commit_interval_s", "must be >= 0", self.commit_interval_s)
        _require(self.heartbeat_interval_s > 0, "heartbeat_interval_s", "must be > 0", self.heartbeat_interval_s)
        _require(self.run_lease_s > 2 * self.heartbeat_interval_s, "run_lease_s",
                 "must be more than twice heartbeat_interval_s", self.run_lease_s)
        _require(self.max_block_mb > 0, "max_block_mb", "must be > 0", self.max_block_mb)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.check(f.name)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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


def config_from_dict(data: dict[str, Any] | None) -> Config:
    """Builds and checks a Config from a (possibly partial) mapping over the embedded defaults."""
    data = data or {}
    cfg = build(Config, data)
    if cfg.profile == "tiny" and "min_aesthetic" not in (data.get("policy") or {}):
        cfg.policy.min_aesthetic = None  # random tiny weights: their aesthetic scores mean nothing
    caption = data.get("caption") or {}
    if cfg.profile == "tiny":  # a tiny random VLM on CPU: short answers, transformers unless chosen
        cfg.caption.backend = caption.get("backend", "transformers")
        cfg.caption.max_new_tokens = caption.get("max_new_tokens", 48)
    return cfg.check()


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
    import copy

    if not isinstance(config, Config):
        return load_config(config, profile=profile)
    cfg = copy.deepcopy(config)
    if profile is not None:
        cfg.profile = profile
    return cfg.check()


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def default_yaml() -> str:
    """The embedded defaults as YAML (what `curate config` prints and `configs/default.yaml` holds)."""
    return Config().to_yaml()
