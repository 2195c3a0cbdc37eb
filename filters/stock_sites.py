"""Stock-footage sites whose previews carry a burned-in watermark, and a matcher for recognised text that names one.

Stock previews are a common contaminant of scraped video, and their watermark is the one kind of overlay that sits
in the middle of the frame, where OCR otherwise takes persistent text on a still background for a sign
(filters/ocr.py). Recognition of a semi-transparent watermark is often a letter or two off ("getyimages",
"gettyirages", "geltyinrages" were read from the real Getty strokes burned into real footage), so long names match
by similarity; short ones ("alamy", "istock") would then match ordinary words ("alarm", "stockholm"), so they must
appear exactly.
"""

from __future__ import annotations

from difflib import SequenceMatcher

SITES = ("gettyimages", "shutterstock", "istock", "adobestock", "alamy", "dreamstime", "depositphotos", "123rf",
         "pond5", "storyblocks", "videoblocks", "envato", "bigstock", "canstock", "fotolia", "vecteezy")
FUZZY_FROM = 8  # names this long or longer match by similarity...
SIMILARITY = 0.75  # ...at least this (difflib's ratio over the best window of the text)


def stock_site(text: str | None) -> str | None:
    """The stock site `text` names (letters and digits only, any case), or None.

    >>> stock_site("getyimages"), stock_site("Physics lab"), stock_site("stockholm")
    ('gettyimages', None, None)
    """
    t = "".join(c for c in (text or "").lower() if c.isalnum())
    if not t:
        return None
    for site in SITES:
        if site in t:
            return site
    for site in (s for s in SITES if len(s) >= FUZZY_FROM):
        if _best_window_ratio(t, site) >= SIMILARITY:
            return site
    return None


def _best_window_ratio(text: str, name: str) -> float:
    """The highest similarity between `name` and any stretch of `text` within two letters of its length."""
    best = 0.0
    for size in range(len(name) - 2, len(name) + 3):
        for i in range(max(1, len(text) - size + 1)):
            best = max(best, SequenceMatcher(None, text[i:i + size], name).ratio())
    return best
