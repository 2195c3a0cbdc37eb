"""Safety screening: NudeNet's YOLOv8n nudity detector (`nudenet` 3.4.2, `320n.onnx` inside the wheel, nothing
downloaded) on a scene's keyframes.

Per scene:
    nsfw_score     the highest confidence of an explicit class (exposed breasts, genitalia, buttocks, anus) over
                   the keyframes read; 0.0 when none was found
    nsfw_classes   every class found at `min_score` or more (faces and covered parts included), for audits

The middle keyframe is read first; the others only when it shows any part of a person (a face, a covered or exposed
body part), so scenes without people cost one detection. Keyframes are letterboxed to 320 px on the long side (the
model's training size) and a multiple of 32 on the short one, instead of NudeNet's square pad, so a 16:9 frame costs
40% less with the same pixels per object. Post-processing is NudeNet's: the best class per anchor, then non-maximum
suppression at IoU 0.45.

What it cannot judge: context (art, medicine, breastfeeding), violence, gore and hate symbols: it is a nudity
detector. Tiny figures (under ~20 px on the keyframe) are missed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from filters.onnx import RuntimeSettings, choose_engine, model, package_file
from filters.picks import middle_first

INSTALL = "pip install nudenet==3.4.2"
MODEL = "320n.onnx"
SIZE = 320
EXPLICIT = frozenset({"FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED",
                      "BUTTOCKS_EXPOSED", "ANUS_EXPOSED"})
NMS_IOU = 0.45
CPU_BEST = "onnxruntime"  # `engine: auto` on CPU: OpenVINO is no faster on this model at f32 (filters/onnx.py)


def labels() -> list[str]:
    """NudeNet's class names, in the model's output order."""
    import nudenet.nudenet as nn

    return list(vars(nn)["__labels"])  # a module global; its name is private to nudenet


@dataclass(frozen=True)
class SafetySettings(RuntimeSettings):
    """Mirrors the config's `scoring.safety` (where it runs: RuntimeSettings)."""

    frames: int = 3  # keyframes read per scene at most
    min_score: float = 0.3  # detections below this are ignored


def preflight(settings: SafetySettings) -> None:
    """Fails before a job starts when the NSFW model cannot be had (ModelUnavailable says how to get it)."""
    package_file("nudenet", MODEL, install=INSTALL)
    choose_engine(settings.device, settings.engine, settings.precision, cpu_best=CPU_BEST)


class SafetyScorer:
    """NSFW score and classes of a scene from its BGR keyframes."""

    name = "nudenet-3.4.2-320n"

    def __init__(self, settings: SafetySettings = SafetySettings()):
        self.settings = settings

    def _model(self):
        s = self.settings
        return model(str(package_file("nudenet", MODEL, install=INSTALL)), s.device, s.threads, s.engine, s.precision,
                     cpu_best=CPU_BEST)

    def setup(self) -> SafetyScorer:
        self._model()
        return self

    def __call__(self, keyframes) -> dict:
        """`keyframes`: a sequence of BGR uint8 frames (indexed lazily: only the frames read are decoded)."""
        if not len(keyframes):
            return {"nsfw_score": None, "nsfw_classes": None}
        names = labels()
        middle, rest = middle_first(len(keyframes), self.settings.frames)
        found = self.detect(keyframes[middle], names)
        if found:  # a person is there: look at the rest of the scene too
            found += [d for i in rest for d in self.detect(keyframes[i], names)]
        explicit = [d["score"] for d in found if d["class"] in EXPLICIT]
        return {"nsfw_score": float(max(explicit, default=0.0)),
                "nsfw_classes": sorted({d["class"] for d in found})}

    def detect(self, bgr: np.ndarray, names: list[str] | None = None) -> list[dict]:
        """Detections on one frame: {"class", "score", "box": [x0, y0, x1, y1] in pixels}."""
        names = names or labels()
        blob, scale = _letterbox(bgr)
        out = self._model()(blob)[0][0].T  # (anchors, 4 + classes)
        scores = out[:, 4:]
        cls = scores.argmax(axis=1)
        best = scores[np.arange(len(cls)), cls]
        keep = best >= self.settings.min_score
        if not keep.any():
            return []
        cx, cy, w, h = (out[keep, i] / scale for i in range(4))
        boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
        idx = cv2.dnn.NMSBoxes(boxes.tolist(), best[keep].tolist(), self.settings.min_score, NMS_IOU)
        return [{"class": names[int(cls[keep][i])], "score": float(best[keep][i]),
                 "box": [float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 0] + boxes[i, 2]),
                         float(boxes[i, 1] + boxes[i, 3])]} for i in np.asarray(idx).reshape(-1)]


def _letterbox(bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """RGB float blob (1, 3, H, W) with the long side SIZE and the short one padded to a multiple of 32."""
    h, w = bgr.shape[:2]
    scale = SIZE / max(h, w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    img = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((-(-nh // 32) * 32, -(-nw // 32) * 32, 3), np.uint8)
    canvas[:nh, :nw] = img
    blob = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    return np.ascontiguousarray(blob), scale

