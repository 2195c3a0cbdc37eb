"""Text in the picture: PP-OCRv4 text detection (recognition optional) on a few of each scene's samples, with the
boxes tracked across them.

The models are the ONNX files inside `rapidocr-onnxruntime` 1.4.4 (nothing is downloaded), run with its own pre-
and post-processing (DB detector, CTC recogniser). The detector runs on the engine `filters/onnx.py` chooses:
OpenVINO on CPU (the same maps as ONNX Runtime, 1.8x as fast), ONNX Runtime's CUDA provider where
`onnxruntime-gpu` is; the optional recogniser on ONNX Runtime.

Per scene:
    text_area              mean share of the frame covered by text boxes over the frames read (Open-Sora's OCR
                           filter measures this)
    persistent_text_area   share of the frame covered by text that stays put across the scene: burned-in subtitles,
                           handles, tickers, watermarks (Cosmos-Curate filters on overlay text stable over time)
    text_boxes             [x0, y0, x1, y1, presence, overlay] of every text track (fractions of the frame;
                           presence is the share of the frames read in which it was found; overlay is 1.0 for the
                           tracks counted in persistent_text_area, 0.0 for the rest: a sign on a wall stays 0)
    ocr_text               the recognised text of the persistent tracks (with `recognize: true`; else that of a
                           stock site's watermark, read to tell it from a sign), for captions, search and audits

Tracking: a box joins a track when it overlaps one of the track's boxes by half of the smaller box, or shares its
text line (most of the height, some of the width): subtitles of different lengths on the same line are one track.

Cost is bounded by a cascade: the middle frame of the spread is read first; a scene with no text there stops
(most real footage: text that stays put is in the middle frame too), one with text gets the rest of `frames`.

Which persistent text counts as laid over the picture: text near a border (within BORDER of it: handles, bugs,
tickers, subtitles); further in, only text whose surroundings change (a stock watermark over moving content).
Text further in on a still background is taken for part of the scene (a sign on a lab wall: the same size as a
centred watermark, so size cannot tell them apart); its box is kept in `text_boxes` all the same. The exception,
with `stock_sites` (on by default): such text is read (the recogniser, ~10 ms a box, only for these tracks) and
taken for an overlay when it names a stock-footage site (filters/stock_sites.py): the centred preview watermark.

What it cannot tell: scene text near a border of a static shot (a shop sign in a corner) passes for an overlay,
and other burned-in text in the middle of a still shot for a sign. Text smaller than about 8 px high on the
frames read (`max_side`) is missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from filters.onnx import RuntimeSettings, choose_engine, model, package_file, use_cuda
from filters.picks import middle_first
from filters.stock_sites import stock_site

INSTALL = "pip install --no-deps rapidocr-onnxruntime==1.4.4"
DET_MODEL = "models/ch_PP-OCRv4_det_infer.onnx"
REC_MODEL = "models/ch_PP-OCRv4_rec_infer.onnx"
CONTAIN = 0.5  # a box joins a track overlapping one of its boxes by this share of the smaller box
SAME_LINE = 0.6  # ...or sharing this share of the smaller height, on overlapping columns
MAX_LINE_HEIGHT = 0.25  # a "text line" taller than this share of the frame is a detector false alarm on texture
BORDER = 0.25  # persistent text within this share of the frame from a border counts as an overlay...
MOVING_SURROUND = 0.5  # ...further in, when the picture around it changes in at least this share of frames
MAX_UPSCALE = 2.0  # frames smaller than `max_side` are upscaled towards it, at most this much


@dataclass(frozen=True)
class OcrSettings(RuntimeSettings):
    """What the text scorer reads and how (mirrors the config's `scoring.ocr`; where it runs: RuntimeSettings)."""

    frames: int = 3  # samples read per scene at most, spread over it
    max_side: int = 448  # frames are scaled to this long side for detection (up or down)
    persist: float = 0.5  # a track found in at least this share of the frames read is persistent
    box_threshold: float = 0.5  # DB detector's box score threshold
    recognize: bool = False  # also read the persistent text (about 10 ms a box on CPU)
    stock_sites: bool = True  # read persistent text in the middle of still shots: a stock site's name is an overlay


def preflight(settings: OcrSettings) -> None:
    """Fails before a job starts when the OCR models cannot be had (ModelUnavailable says how to get them)."""
    package_file("rapidocr_onnxruntime", DET_MODEL, install=INSTALL)
    if settings.recognize or settings.stock_sites:
        package_file("rapidocr_onnxruntime", REC_MODEL, install=INSTALL)
    choose_engine(settings.device, settings.engine, settings.precision)


@lru_cache(maxsize=1)
def _rapidocr_defaults() -> dict:
    """rapidocr's own settings (config.yaml beside its models): pre- and post-processing of each model."""
    import yaml

    det_path = package_file("rapidocr_onnxruntime", DET_MODEL, install=INSTALL)
    return yaml.safe_load((det_path.parent.parent / "config.yaml").read_text())


@lru_cache(maxsize=4)
def _detector_for(settings: OcrSettings):
    """rapidocr's detector on the chosen engine, built once per process."""
    det_path = package_file("rapidocr_onnxruntime", DET_MODEL, install=INSTALL)
    defaults = _rapidocr_defaults()
    infer = model(str(det_path), settings.device, settings.threads, settings.engine, settings.precision)
    return _detector({**defaults["Det"], "limit_type": "max", "limit_side_len": settings.max_side,
                      "box_thresh": settings.box_threshold}, infer)


@lru_cache(maxsize=4)
def _recogniser_for(device: str, threads: int):
    """rapidocr's CTC recogniser on ONNX Runtime, built once per process when first needed."""
    from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer

    rec_path = package_file("rapidocr_onnxruntime", REC_MODEL, install=INSTALL)
    return TextRecognizer({**_rapidocr_defaults()["Rec"], "use_cuda": use_cuda(device), "inter_op_num_threads": 1,
                           "intra_op_num_threads": threads, "model_path": str(rec_path)})


def _detector(config: dict, infer):
    """rapidocr's TextDetector with its network call on our engine (it would otherwise open an ONNX Runtime
    session of its own): its pre-processing, DB post-processing and box filtering are used as they are."""
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

    class Detector(TextDetector):
        def __init__(self, config: dict, infer):  # TextDetector.__init__ less its session
            self.limit_side_len, self.limit_type = config["limit_side_len"], config["limit_type"]
            self.mean, self.std = config["mean"], config["std"]
            self.preprocess_op = None
            self.postprocess_op = DBPostProcess(
                thresh=config.get("thresh", 0.3), box_thresh=config["box_thresh"],
                max_candidates=config.get("max_candidates", 1000), unclip_ratio=config.get("unclip_ratio", 1.6),
                use_dilation=config.get("use_dilation", True), score_mode=config.get("score_mode", "fast"))
            self.infer = infer

    return Detector(config, infer)


class TextScorer:
    """OCR text scores of a scene from its BGR samples (see the module docstring)."""

    name = "ppocr-v4-det"

    def __init__(self, settings: OcrSettings = OcrSettings()):
        self.settings = settings

    def setup(self) -> TextScorer:
        _detector_for(self.settings)
        if self.settings.recognize:
            _recogniser_for(self.settings.device, self.settings.threads)
        return self

    def __call__(self, frames) -> dict:
        """`frames`: a sequence of BGR uint8 samples (indexed lazily: only the frames read are decoded)."""
        if not len(frames):
            return {"text_area": None, "persistent_text_area": None, "text_boxes": None, "ocr_text": None}
        det = _detector_for(self.settings)
        middle, rest = middle_first(len(frames), self.settings.frames)
        boxes = {middle: self._detect(det, frames[middle])}
        if boxes[middle]:
            boxes.update({i: self._detect(det, frames[i]) for i in rest})
        per_frame = [boxes[i] for i in sorted(boxes)]
        tracks = track_boxes(per_frame)
        read = sorted(boxes)
        persistent = [t for t in tracks if t.presence >= self.settings.persist and self._overlay_like(t, frames, read)]
        if self.settings.recognize:
            for t in persistent:
                self._read(frames, read, t)
        text = " | ".join(t.text for t in persistent if t.text is not None) or None
        return {
            "text_area": float(np.mean([union_area(b) for b in per_frame])),
            "persistent_text_area": union_area([t.box for t in persistent]),
            "text_boxes": [[*t.box, t.presence, float(any(t is p for p in persistent))] for t in tracks],
            "ocr_text": text,
        }

    def _overlay_like(self, track: Track, frames, read: list[int]) -> bool:
        """Persistent text near a border is taken as laid over the picture; further in, only when the picture
        around it changes (a stock watermark over moving content), not when it stays still with it (a sign),
        unless it names a stock-footage site (`stock_sites`)."""
        x0, y0, x1, y1 = track.box
        if min(x0, y0, 1 - x1, 1 - y1) <= BORDER:
            return True
        from filters.watermark import surround_changes

        if surround_changes(frames, track.box) >= MOVING_SURROUND:
            return True
        if not self.settings.stock_sites:
            return False
        return stock_site(self._read(frames, read, track)) is not None

    def _detect(self, det, frame: np.ndarray) -> list[list[float]]:
        """Text line boxes in `frame`, as fractions of it."""
        import cv2

        h, w = frame.shape[:2]
        scale = min(MAX_UPSCALE, self.settings.max_side / max(h, w))
        if abs(scale - 1.0) > 0.05:  # small sources are upscaled so that small text is still seen
            frame = cv2.resize(frame, None, fx=scale, fy=scale,
                               interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        h, w = frame.shape[:2]
        quads, _ = det(frame)
        boxes = [[float(q[:, 0].min() / w), float(q[:, 1].min() / h), float(min(w, q[:, 0].max() + 1) / w),
                  float(min(h, q[:, 1].max() + 1) / h)] for q in (quads if quads is not None else [])]
        return [b for b in boxes if b[3] - b[1] <= MAX_LINE_HEIGHT]

    def _read(self, frames, read: list[int], track: Track) -> str:
        """The recognised text of a track, from the frame where its box is largest (read once: `track.text`)."""
        if track.text is not None:
            return track.text
        rec = _recogniser_for(self.settings.device, self.settings.threads)
        k = int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in track.boxes]))
        frame = frames[read[track.frames[k]]]
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = track.boxes[k]
        crop = frame[int(y0 * h):max(int(y0 * h) + 1, int(np.ceil(y1 * h))),
                     int(x0 * w):max(int(x0 * w) + 1, int(np.ceil(x1 * w)))]
        (track.text, _score), = rec([np.ascontiguousarray(crop)])[0]
        return track.text


@dataclass
class Track:
    """A text region followed across the frames read: its boxes, the frames they came from, its extent, and its
    recognised text once read."""

    boxes: list[list[float]]
    frames: list[int]
    presence: float = 0.0
    text: str | None = None

    @property
    def box(self) -> list[float]:
        b = np.asarray(self.boxes)
        return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]


def _overlap(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Intersection area over the smaller area; vertical overlap over the smaller height; horizontal overlap."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    height = min(a[3] - a[1], b[3] - b[1])
    contain = max(0.0, ix) * max(0.0, iy) / smaller if smaller > 0 else 0.0
    return contain, (max(0.0, iy) / height if height > 0 else 0.0), ix


def _same_region(a: list[float], b: list[float]) -> bool:
    contain, line, ix = _overlap(a, b)
    return contain >= CONTAIN or (line >= SAME_LINE and ix > 0)


def track_boxes(per_frame: list[list[list[float]]]) -> list[Track]:
    """Groups per-frame boxes into tracks; presence = share of frames with a box of the track."""
    tracks: list[Track] = []
    for f, boxes in enumerate(per_frame):
        for box in boxes:
            track = next((t for t in tracks if any(_same_region(box, o) for o in t.boxes)), None)
            if track is None:
                tracks.append(Track([box], [f]))
            else:
                track.boxes.append(box)
                track.frames.append(f)
    for t in tracks:
        t.presence = len(set(t.frames)) / max(1, len(per_frame))
    return tracks


def union_area(boxes: list[list[float]], grid: int = 200) -> float:
    """Share of the frame covered by the union of `boxes` (fractions), rasterised on a grid x grid mask."""
    if not boxes:
        return 0.0
    mask = np.zeros((grid, grid), bool)
    for x0, y0, x1, y1 in (b[:4] for b in boxes):
        mask[int(y0 * grid):int(np.ceil(y1 * grid)), int(x0 * grid):int(np.ceil(x1 * grid))] = True
    return float(mask.mean())

