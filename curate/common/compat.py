"""Making the registry's torchvision importable next to a CPU-only torch (see ../shared/ENVIRONMENT.md).

torchvision 0.28.0 on PyPI is a CUDA build: against the CPU torch its compiled `_C` library cannot load, and
`import torchvision` then fails registering fake kernels for operators that do not exist. Declaring the two
operator schemas it looks up (twelve, all never called) makes the pure-Python parts (transforms, models)
importable, which is all
open_clip and transformers need. Acts only when `_C` really cannot load; call it in every process that may
import torchvision (model-loading stages call it in their `setup`, so Ray workers do too).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# torchvision's operator schemas (from its csrc/ops), all of which `_meta_registrations` looks up at import.
_ROI = "float spatial_scale, SymInt pooled_height, SymInt pooled_width"
_SIZES = "SymInt batch_size, SymInt channels, SymInt height, SymInt width"
_DEFORM = ("Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, "
           "SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, "
           "bool use_mask")
_SCHEMAS = [
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    f"roi_align(Tensor input, Tensor rois, {_ROI}, int sampling_ratio, bool aligned) -> Tensor",
    f"_roi_align_backward(Tensor grad, Tensor rois, {_ROI}, {_SIZES}, int sampling_ratio, bool aligned) -> Tensor",
    f"roi_pool(Tensor input, Tensor rois, {_ROI}) -> (Tensor, Tensor)",
    f"_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, {_ROI}, {_SIZES}) -> Tensor",
    f"ps_roi_align(Tensor input, Tensor rois, {_ROI}, int sampling_ratio) -> (Tensor, Tensor)",
    f"_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, {_ROI}, int sampling_ratio, "
    f"{_SIZES}) -> Tensor",
    f"ps_roi_pool(Tensor input, Tensor rois, {_ROI}) -> (Tensor, Tensor)",
    f"_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, {_ROI}, {_SIZES}) -> Tensor",
    f"deform_conv2d({_DEFORM}) -> Tensor",
    f"_deform_conv2d_backward(Tensor grad, {_DEFORM}) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
]
_done = False


def ensure_torchvision() -> None:
    """Declares torchvision's missing operator schemas if (and only if) its compiled library cannot load."""
    global _done
    if _done or "torchvision" in sys.modules:
        _done = True
        return
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return
    lib = next(Path(spec.origin).parent.glob("_C*.so"), None)
    try:
        if lib is not None:
            torch.ops.load_library(str(lib))
        _done = True
        return
    except (OSError, RuntimeError):
        pass
    library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        library.define(schema)
    _LIBRARIES.append(library)
    _done = True


_LIBRARIES: list = []  # torch.library.Library objects must stay referenced


def torchvision_is_shimmed() -> bool:
    """True when `ensure_torchvision` had to declare the schemas (torchvision's kernels and codecs are missing)."""
    return bool(_LIBRARIES)


def prefer_pil_image_backend() -> None:
    """Makes transformers' auto image processors pick their PIL backend when torchvision's image codecs are
    missing (its torchvision backend decodes URLs and base64 images with `torchvision.io`, which then fails).

    Only `transformers serve` needs it (it decodes request images itself); our own backends pass arrays.
    """
    ensure_torchvision()
    if not torchvision_is_shimmed():
        return
    from transformers.models.auto import image_processing_auto as auto

    original = auto._resolve_backend

    def resolve(backend, use_fast, base_class_name):
        return "pil" if backend is None and use_fast is None else original(backend, use_fast, base_class_name)

    auto._resolve_backend = resolve


def register_open_clip_config(name: str, config: dict) -> None:
    """Registers a model config with open_clip under `name` (once per process), for the tiny random models.

    open_clip only reads configs from JSON files in a directory, so the config is written to a temporary one.
    """
    import json
    import tempfile

    import open_clip

    if name in open_clip.list_models():
        return
    d = Path(tempfile.mkdtemp(prefix="vidcurate-openclip-"))
    (d / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(d)
