"""Training data straight from a curated dataset's `clips.lance`: no export step.

A selection is `clips.lance` at a version (a tag or a version number, pinned to a number at start so a moving
tag cannot change the data under a run) and a Lance filter (`aesthetic >= 5`). Only the small columns are read
up front; each clip's mp4 is read lazily from the blob column when an item is asked for, decoded with PyAV (or
decord) straight from the blob (scaled by the decoder to cover the clip's aspect-ratio bucket), cropped in time
(T frames at a stride, random start) and space (random or centre crop to the bucket).

Items are addressed by (index, epoch) and draw their randomness (crops, caption dropout) from a generator
seeded with (seed, epoch, index), so a batch is the same whichever worker decodes it, with or without workers,
and after a resume. `BucketBatchSampler` makes same-bucket batches, shuffled per epoch, sharded across ranks,
endless, and able to start at any (epoch, batch) position.

Lance is not fork-safe: loaders with workers use the `spawn` start method, and the dataset opens its Lance
handles lazily in each process (they are dropped when pickled).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

warnings.filterwarnings("ignore", message="lance is not fork-safe")

from curate.common.extras import import_extra  # noqa: E402
from curate.store.lance_store import LanceStore, sql_in  # noqa: E402
from curate.store.versions import resolve  # noqa: E402

CAPTION_FIELDS = ("caption", "caption_short", "rewrite_dense", "rewrite_short")
# A rewritten caption (caption.rewrite) that is missing or failed falls back to the original it was made from.
FALLBACK = {"rewrite_dense": "caption", "rewrite_short": "caption_short"}


@dataclass
class DataConfig:
    """Which clips, how they become tensors, and how they are batched."""

    dataset: str = "demo/dataset"  # the curated dataset: a directory or object-store URI holding clips.lance
    version: str | int | None = None  # a tag (`run-...`) or a clips.lance version number; None is the latest
    filter: str | None = None  # a Lance SQL filter over clips.lance columns, e.g. "aesthetic >= 5"
    num_frames: int = 17  # T per clip: 1 + k * the VAE's temporal compression
    frame_stride: int = 2  # take every n-th frame (lowered for clips too short for the span)
    resolution: int = 256  # buckets have about resolution**2 pixels
    aspect_ratios: list[float] = field(default_factory=lambda: [1.0, 4 / 3, 16 / 9, 3 / 4, 9 / 16])  # width/height
    buckets: list[list[int]] | None = None  # explicit [[height, width], ...] instead of resolution + ratios
    bucket_multiple: int = 16  # bucket sides are multiples of this (VAE compression x DiT patch)
    random_crop: bool = True  # random temporal start and spatial offset; centred when false
    # caption (dense) | caption_short | rewrite_dense | rewrite_short (the rewrite pass's, else the original);
    # null captions read as "" (unconditional)
    caption_field: str = "caption"
    caption_dropout: float = 0.1  # share of captions replaced by "" for classifier-free guidance
    decoder: str = "pyav"  # pyav | decord
    batch_size: int = 8  # per rank
    num_workers: int = 2  # DataLoader worker processes (spawned); 0 decodes in the training process
    latents: str | None = None  # a latents table URI written by `cache-latents`: read it instead of decoding
    storage_options: dict[str, str] | None = None  # for object stores

    def __post_init__(self):
        if self.caption_field not in CAPTION_FIELDS:
            raise ValueError(f"data.caption_field must be one of {CAPTION_FIELDS} (got {self.caption_field!r})")
        if self.decoder not in ("decord", "pyav"):
            raise ValueError(f"data.decoder must be 'decord' or 'pyav' (got {self.decoder!r})")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"data.caption_dropout must be in [0, 1] (got {self.caption_dropout})")


def bucket_sizes(cfg: DataConfig) -> list[tuple[int, int]]:
    """(height, width) of every bucket: the explicit list, or one per aspect ratio with ~resolution**2 pixels."""
    if cfg.buckets:
        return [(int(h), int(w)) for h, w in cfg.buckets]
    m, area = cfg.bucket_multiple, cfg.resolution ** 2
    sizes = []
    for ratio in cfg.aspect_ratios:
        h = max(m, round(math.sqrt(area / ratio) / m) * m)
        w = max(m, round(math.sqrt(area * ratio) / m) * m)
        if (h, w) not in sizes:
            sizes.append((h, w))
    return sizes


def nearest_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> int:
    """The bucket whose aspect ratio is closest to the clip's (in log space, so 2:1 and 1:2 are equally far)."""
    ratio = math.log(max(width, 1) / max(height, 1))
    return min(range(len(buckets)), key=lambda i: abs(math.log(buckets[i][1] / buckets[i][0]) - ratio))


def cover_size(width: int, height: int, bucket: tuple[int, int]) -> tuple[int, int]:
    """(width, height) to scale a frame to so it covers the bucket with its aspect ratio kept."""
    bh, bw = bucket
    scale = max(bw / width, bh / height)
    return max(bw, round(width * scale)), max(bh, round(height * scale))


def frame_indices(available: int, num_frames: int, stride: int, rng: np.random.Generator | None) -> list[int]:
    """T frame indices at `stride` from a random start (centred without `rng`); the stride shrinks for short
    clips, and the last frame repeats when even stride 1 is too long."""
    stride = max(1, min(stride, (available - 1) // max(num_frames - 1, 1)))
    span = (num_frames - 1) * stride + 1
    room = max(available - span, 0)
    start = int(rng.integers(0, room + 1)) if rng is not None else room // 2
    return [min(start + i * stride, available - 1) for i in range(num_frames)]


def decode_frames(blob, count_hint: int, num_frames: int, stride: int, size: tuple[int, int],
                  rng: np.random.Generator | None, decoder: str) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 scaled to `size` (width, height) by the decoder.

    PyAV (the default) decodes straight from the file-like blob, stops after the last frame it needs and scales
    with one reused swscale context (area filter): on the demo clips it turns a clip into frames about a quarter
    faster than decord (see BENCHMARKS.md). decord is kept as the alternative.

    Args:
        blob: a file-like object holding the mp4 (a Lance BlobFile, an open file, BytesIO) or a path.
        count_hint: the stored frame count (PyAV only: decord counts frames itself).
    """
    width, height = size
    if decoder == "decord":
        return _decode_decord(blob, num_frames, stride, size, rng)
    import av
    from av.video.reformatter import Interpolation, VideoReformatter

    wanted = frame_indices(max(count_hint, 1), num_frames, stride, rng)
    scaler = VideoReformatter()  # one swscale context for the clip: a new one per frame costs as much as decoding
    frames: dict[int, np.ndarray] = {}
    with av.open(blob) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = scaler.reformat(frame, width=width, height=height, format="rgb24",
                                            interpolation=Interpolation.AREA).to_ndarray()
            if i >= wanted[-1]:
                break
    if not frames:
        raise ValueError("no frames decoded")
    last = frames[max(frames)]  # the stored count can overstate what decodes: repeat the last frame
    return np.stack([frames.get(i, last) for i in wanted])


def _decode_decord(blob, num_frames: int, stride: int, size: tuple[int, int],
                   rng: np.random.Generator | None) -> np.ndarray:
    decord = import_extra("decord", extra="decord", feature="data.decoder: decord")

    width, height = size
    data = blob.read() if hasattr(blob, "read") else blob
    error = None
    for extra in range(4):
        # decord 0.6 fails to copy out some scaled widths (16, 24, 48, 72 px, ...): a pixel wider works,
        # and the crop that follows takes it off again.
        source = io.BytesIO(data) if isinstance(data, bytes) else data
        reader = decord.VideoReader(source, width=width + extra, height=height, num_threads=1)
        try:
            return reader.get_batch(frame_indices(len(reader), num_frames, stride, rng)).asnumpy()
        except decord.DECORDError as e:
            error = e
    raise error


def crop_to_bucket(frames: np.ndarray, bucket: tuple[int, int], rng: np.random.Generator | None) -> torch.Tensor:
    """(T, H, W, 3) uint8 covering the bucket -> (3, T, bh, bw) float in [-1, 1]."""
    bh, bw = bucket
    h, w = frames.shape[1:3]
    y = int(rng.integers(0, h - bh + 1)) if rng is not None else (h - bh) // 2
    x = int(rng.integers(0, w - bw + 1)) if rng is not None else (w - bw) // 2
    crop = np.ascontiguousarray(frames[:, y:y + bh, x:x + bw])
    return torch.from_numpy(crop).permute(3, 0, 1, 2).float().div_(127.5).sub_(1.0)


def clips_version(store: LanceStore, ref: str | int | None) -> int:
    """The clips.lance version number a tag or number names (the latest when None).

    Raises:
        ValueError: no clips.lance, or no such tag or version.
    """
    if not store.exists("clips"):
        raise ValueError(f"no clips.lance in {store.uri}")
    if ref is None:
        return store.open("clips").version
    versions = resolve(store, ref)
    if "clips" not in versions:
        raise ValueError(f"{ref!r} does not tag clips.lance in {store.uri}")
    return versions["clips"]


class ClipSelection(Dataset):
    """The selected clips' small columns, their buckets and captions; subclasses load the tensors.

    Args:
        cfg: the data config (dataset, version, filter, ...).
        seed: seeds every item's randomness together with (epoch, index).
    """

    columns = ["clip_id", "width", "height", "num_frames", *CAPTION_FIELDS]

    def __init__(self, cfg: DataConfig, *, seed: int = 0):
        self.cfg, self.seed = cfg, seed
        self.store = LanceStore(cfg.dataset, storage_options=cfg.storage_options)
        self.version = clips_version(self.store, cfg.version)
        clips = self.store.open("clips", version=self.version)
        have = set(clips.schema.names)  # a dataset from before the rewrite pass has no rewrite columns
        table = clips.to_table(columns=[c for c in self.columns if c in have], filter=cfg.filter, with_row_id=True)
        self.rows = table.to_pylist()
        if not self.rows:
            raise ValueError(f"no clips in {self.store.uri} at version {self.version} match "
                             f"filter {cfg.filter!r}")
        self.buckets = bucket_sizes(cfg)
        self._handles: dict = {}

    def __getstate__(self):  # Lance handles do not cross processes: each worker opens its own
        return {**self.__dict__, "_handles": {}}

    def handle(self, name: str, uri: str | None = None, version: int | None = None):
        if name not in self._handles:
            import lance

            self._handles[name] = lance.dataset(uri or self.store.table_uri(name), version=version,
                                                storage_options=self.cfg.storage_options)
        return self._handles[name]

    def __len__(self) -> int:
        return len(self.rows)

    def bucket_keys(self) -> list:
        """One hashable key per item; a batch only holds items with equal keys."""
        return [nearest_bucket(r["width"], r["height"], self.buckets) for r in self.rows]

    def caption(self, row: dict, rng: np.random.Generator) -> str:
        name = self.cfg.caption_field
        text = row.get(name) or row.get(FALLBACK.get(name, name)) or ""
        if self.cfg.caption_dropout and rng.random() < self.cfg.caption_dropout:
            return ""
        return text

    def __getitem__(self, key) -> dict:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list) -> list[dict]:
        """Items for (index, epoch, position) keys (or bare indices); what each needs from Lance is fetched in
        one call for the whole batch (the DataLoader calls this with a batch's keys)."""
        keys = [k if isinstance(k, tuple) else (k, 0, 0) for k in keys]
        rows = [self.rows[k[0]] for k in keys]
        items = []
        for (index, epoch, position), row, fetched in zip(keys, rows, self.fetch(rows)):
            rng = np.random.default_rng([self.seed, epoch, index])
            item = self.load(row, fetched, rng if self.cfg.random_crop else None)  # None: centred crops
            item.update(clip_id=row["clip_id"], caption=self.caption(row, rng), position=(epoch, position))
            items.append(item)
        return items

    def fetch(self, rows: list[dict]) -> list:
        """What `load` needs from storage for each row, in one request."""
        raise NotImplementedError

    def load(self, row: dict, fetched, rng: np.random.Generator | None) -> dict:
        raise NotImplementedError


class LanceClipDataset(ClipSelection):
    """Clips decoded from the blob column: items {"video": (3, T, H, W) in [-1, 1], "caption", "clip_id"}."""

    def fetch(self, rows: list[dict]) -> list:
        return self.handle("clips", version=self.version).take_blobs("video", ids=[r["_rowid"] for r in rows])

    def load(self, row: dict, fetched, rng: np.random.Generator | None) -> dict:
        bucket = self.buckets[nearest_bucket(row["width"], row["height"], self.buckets)]
        frames = decode_frames(fetched, row["num_frames"] or 0, self.cfg.num_frames, self.cfg.frame_stride,
                               cover_size(row["width"], row["height"], bucket), rng, self.cfg.decoder)
        return {"video": crop_to_bucket(frames, bucket, rng)}


class LatentClipDataset(ClipSelection):
    """Cached VAE latents (see train/latents.py) of the selected clips: items {"latent_mean", "latent_std"
    (C, T', H', W'), "caption", "clip_id"}; the training step samples the posterior. Captions come from the
    selected clips version, so re-captioned clips train with their new text without re-encoding.

    Raises:
        ValueError: none of the selected clips has a cached latent.
    """

    def __init__(self, cfg: DataConfig, *, seed: int = 0):
        super().__init__(cfg, seed=seed)
        import lance

        latents = lance.dataset(cfg.latents, storage_options=cfg.storage_options)
        ids = latents.to_table(columns=["clip_id", "shape"],
                               filter=sql_in("clip_id", [r["clip_id"] for r in self.rows])).to_pylist()
        positions = {r["clip_id"]: i for i, r in enumerate(latents.to_table(columns=["clip_id"]).to_pylist())}
        shapes = {r["clip_id"]: tuple(r["shape"]) for r in ids}
        self.missing = sum(1 for r in self.rows if r["clip_id"] not in shapes)
        self.rows = [{**r, "shape": shapes[r["clip_id"]], "_latent_pos": positions[r["clip_id"]]}
                     for r in self.rows if r["clip_id"] in shapes]
        if not self.rows:
            raise ValueError(f"no cached latents in {cfg.latents} for the selected clips (run cache-latents)")
        self.latents_version = latents.version

    def bucket_keys(self) -> list:
        return [r["shape"] for r in self.rows]

    def fetch(self, rows: list[dict]) -> list:
        table = self.handle("latents", self.cfg.latents, self.latents_version).take(
            [r["_latent_pos"] for r in rows], columns=["mean", "std"])
        return table.to_pylist()

    def load(self, row: dict, fetched, rng: np.random.Generator | None) -> dict:
        return {f"latent_{name}": torch.from_numpy(np.frombuffer(fetched[name], np.float16).copy()).float().view(
            *row["shape"]) for name in ("mean", "std")}


class BucketBatchSampler:
    """Endless same-bucket batches of `(index, epoch, position)` keys.

    Each epoch shuffles every bucket's items with (seed, epoch), cuts them into batches, shuffles the batch
    order, and gives rank r the batches r, r + world_size, ... (the list is cycled to a multiple of world_size,
    so every rank takes the same number of steps). Iteration starts at `start` = (epoch, position).
    """

    def __init__(self, keys: list, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, start: tuple[int, int] = (0, 0)):
        self.keys, self.batch_size, self.seed = keys, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.start = tuple(start)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches (lists of item indices) in `epoch`."""
        rng = np.random.default_rng([self.seed, epoch])
        groups: dict = {}
        order = rng.permutation(len(self.keys)) if self.shuffle else range(len(self.keys))
        for i in order:
            groups.setdefault(self.keys[int(i)], []).append(int(i))
        batches = [g[j:j + self.batch_size] for g in groups.values() for j in range(0, len(g), self.batch_size)]
        if self.shuffle:
            batches = [batches[int(i)] for i in rng.permutation(len(batches))]
        total = math.ceil(len(batches) / self.world_size) * self.world_size
        batches = [batches[i % len(batches)] for i in range(total)]
        return batches[self.rank::self.world_size]

    def __iter__(self):
        epoch, position = self.start
        while True:
            batches = self.epoch_batches(epoch)
            for p in range(position, len(batches)):
                yield [(i, epoch, p) for i in batches[p]]
            epoch, position = epoch + 1, 0


def collate(items: list[dict]) -> dict:
    """Stacks tensors, lists the rest; `position` is the batch's (epoch, position) for resume."""
    out = {k: torch.stack([it[k] for it in items]) for k, v in items[0].items() if isinstance(v, torch.Tensor)}
    out.update(caption=[it["caption"] for it in items], clip_id=[it["clip_id"] for it in items],
               position=items[0]["position"])
    return out


def make_dataset(cfg: DataConfig, *, seed: int = 0) -> ClipSelection:
    """Cached latents when `cfg.latents` is set, else decoded clips."""
    return LatentClipDataset(cfg, seed=seed) if cfg.latents else LanceClipDataset(cfg, seed=seed)


def make_loader(dataset: ClipSelection, *, batch_size: int, num_workers: int, seed: int = 0, rank: int = 0,
                world_size: int = 1, start: tuple[int, int] = (0, 0), pin_memory: bool = False) -> DataLoader:
    """An endless loader over same-bucket batches; workers are spawned (Lance is not fork-safe)."""
    sampler = BucketBatchSampler(dataset.bucket_keys(), batch_size, seed=seed, rank=rank, world_size=world_size,
                                 start=start)
    extra = dict(multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=2) if num_workers else {}
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate,
                      pin_memory=pin_memory, **extra)
