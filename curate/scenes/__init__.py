"""Scene detection: cut detectors behind one small interface, and the spans made from their cuts."""

from curate.scenes.base import CutDetector, make_detector
from curate.scenes.spans import Span, make_spans

__all__ = ["CutDetector", "make_detector", "Span", "make_spans"]
