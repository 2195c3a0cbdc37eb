"""A well-formed dense-v1 caption, for the caption checks and the captioner's retry tests."""

from __future__ import annotations

import json

GOOD = {
    "short_caption": "A red tram climbs a steep street at dusk.",
    "dense_caption": "A red and cream tram climbs a steep cobbled street lined with pastel houses while "
                     "pedestrians step aside; overhead wires cross the frame and warm street lamps come on as "
                     "the sky fades from orange to blue.",
    "main_subject": "red tram", "background": "hillside street with houses", "camera_motion": "static",
    "style": "live action", "lighting": "dusk",
}


def dump(obj) -> str:
    """What a model that follows the prompt answers: the object as one line of JSON."""
    return json.dumps(obj)
