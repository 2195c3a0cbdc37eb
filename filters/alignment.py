"""Caption-video alignment: how well a caption describes its clip, by the aesthetic stage's own CLIP.

`caption_clip_score` is the cosine of the caption's text embedding (CLIP's text tower) and the clip's stored
`clip_embedding` (the normalised mean of its keyframes' image embeddings, inside the letterbox bars), so nothing
is decoded or embedded again on the image side. It is in [-1, 1]; higher is better.

Which text: the short caption, one sentence, the kind of text CLIP was trained on. The dense paragraph runs past
CLIP's 77-token context (it would be cut after its first sentences) and is scored only when there is no short
one. What it can tell: a caption about something else than the clip (a hallucinated subject, a caption that
went to the wrong clip, boilerplate). What it cannot: details CLIP does not see (counts, order of actions, small
text), so it is a floor against mismatches, not a measure of caption quality.
"""

from __future__ import annotations

import numpy as np


def caption_text(caption_short: str | None, caption: str | None) -> str | None:
    """The text scored against the clip (see the module docstring)."""
    return (caption_short or "").strip() or (caption or "").strip() or None


def caption_clip_scores(embed_text, texts: list[str | None], clip_embeddings: list) -> list[float | None]:
    """Cosine of each text's CLIP embedding and its clip's embedding; None where either is missing.

    `embed_text(list[str]) -> (N, D)` is the CLIP's text tower, L2-normalised (`AestheticScorer.embed_text`).
    Raises ValueError when the embeddings' width is not the text tower's (another CLIP made them).
    """
    scored = [i for i, (t, e) in enumerate(zip(texts, clip_embeddings)) if t and e is not None and len(e)]
    out: list[float | None] = [None] * len(texts)
    if not scored:
        return out
    text_emb = embed_text([texts[i] for i in scored])
    image_emb = np.asarray([clip_embeddings[i] for i in scored], np.float32)
    if image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"clip embeddings are {image_emb.shape[1]}-d but the CLIP text tower gives "
                         f"{text_emb.shape[1]}-d: they were made by another model")
    image_emb /= np.maximum(np.linalg.norm(image_emb, axis=1, keepdims=True), 1e-12)
    for i, score in zip(scored, np.einsum("nd,nd->n", text_emb, image_emb)):
        out[i] = float(score)
    return out
