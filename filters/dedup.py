"""Duplicate signatures of a scene and the distances between them: what `curate dedup` groups by.

Three levels, each computed from what the analysis pass keeps (no decode of the video again):
- exact: `content_hash`, a digest of every decoded frame of the scene (the analysis pass hashes the frames it
  feeds the cut detector), so a remux or a copy under another name is found however its bytes differ;
- near: `sample_hashes`, a perceptual hash of every sample (a 64-bit DCT pHash and a 64-bit gradient dHash of
  luma, inside the scene's `content_box` so that letterbox bars do not count). Two scenes are near-duplicates
  when the shorter one's samples each find a close sample in the other (`near_distance`): robust to re-encoding,
  rescaling, small crops, bars and a burned-in watermark, and to one scene being a segment of the other;
- semantic: cosine distance of CLIP embeddings (`semantic_distance`), as SemDeDup does.

Measured on real footage (`bench/dedup_bench.py`, testdata/real and reposts of bikes.mp4): the reposts of a
scene lie within 0.088 of it (a 5% crop the farthest), the closest two distinct videos (two lab-bench recordings
from one tripod) 0.173 apart; the default near threshold, 0.12, sits between them. Scenes of one screencast or
slide deck that show the same screen again group too: for training they are the same picture.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from filters.quality import crop_to_box

HASH_BITS = 128  # per sample: 64 of pHash, 64 of dHash
HASH_BYTES = HASH_BITS // 8


def frame_hash(bgr: np.ndarray, box: Sequence[float] | None = None) -> bytes:
    """The 16-byte perceptual hash of one frame (BGR uint8), inside `box` ([x0, y0, x1, y1] fractions)."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    gray = crop_to_box(gray, box)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    # pHash: the low frequencies against their median; the DC term (overall brightness) carries no shape.
    p = np.concatenate([[False], low[1:] > np.median(low[1:])])
    g = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    d = (g[:, 1:] > g[:, :-1]).flatten()  # dHash: brightness gradients left to right
    return np.packbits(np.concatenate([p, d])).tobytes()


def sample_hashes(frames: Sequence[np.ndarray], box: Sequence[float] | None = None) -> list[bytes]:
    """`frame_hash` of every frame (a scene's samples, in order)."""
    return [frame_hash(f, box) for f in frames]


def hash_bits(hashes: Sequence[bytes]) -> np.ndarray:
    """(N, 128) bool array of N stored sample hashes."""
    if not hashes:
        return np.zeros((0, HASH_BITS), bool)
    return np.unpackbits(np.frombuffer(b"".join(hashes), np.uint8).reshape(len(hashes), HASH_BYTES), axis=1) > 0


def near_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two scenes look, from their `hash_bits` (see `near_distances`)."""
    return float(near_distances([a, b])[0, 1])


def near_distances(scenes: Sequence[np.ndarray], *, chunk: int = 2048) -> np.ndarray:
    """(m, m) distances between m scenes from their `hash_bits`: for each sample of the shorter scene, the
    share of bits it differs by from its closest sample in the other, averaged (both ways, averaged, when the two
    have as many samples). 0 for the same frames; 1.0 where a scene has no samples.

    One matrix product per `chunk` samples, so m scenes of s samples cost (m s)^2 bit comparisons in BLAS and
    chunk * m * s floats of memory.
    """
    m = len(scenes)
    sizes = np.array([len(b) for b in scenes])
    out = np.ones((m, m), np.float32)
    filled = np.flatnonzero(sizes)
    if not len(filled):
        return out
    x = np.concatenate([scenes[i] for i in filled]).astype(np.float32) * 2 - 1  # bits as -1/+1
    starts = np.concatenate([[0], np.cumsum(sizes[filled])[:-1]])
    best = np.empty((len(x), len(filled)), np.float32)  # sample -> its closest sample's agreement, per scene
    for c in range(0, len(x), chunk):  # agreement (x . y) = bits - 2 * differing bits: the max is the closest
        best[c:c + chunk] = np.maximum.reduceat(x[c:c + chunk] @ x.T, starts, axis=1)
    closest = (HASH_BITS - best) / (2 * HASH_BITS)
    directed = np.add.reduceat(closest, starts, axis=0) / sizes[filled][:, None]  # [a, b]: a's samples to b
    n = sizes[filled]
    both = np.where(n[:, None] < n[None, :], directed, np.where(n[:, None] > n[None, :], directed.T,
                                                                  (directed + directed.T) / 2))
    out[np.ix_(filled, filled)] = np.clip(both, 0, 1)
    return out


def semantic_distances(embeddings: np.ndarray) -> np.ndarray:
    """(m, m) cosine distances (1 - cosine similarity) between the rows of `embeddings`."""
    e = np.asarray(embeddings, np.float32)
    norm = np.linalg.norm(e, axis=1, keepdims=True)
    e = e / np.where(norm > 0, norm, 1)
    return np.clip(1.0 - e @ e.T, 0, 2)


def near_vector(bits: np.ndarray) -> np.ndarray:
    """One float vector per scene from its `hash_bits` (the mean of the samples' bits as -1/+1), for the k-means
    that partitions scenes before the exact comparison: near-duplicates have close vectors."""
    if not len(bits):
        return np.zeros(HASH_BITS, np.float32)
    return (bits.mean(axis=0) * 2 - 1).astype(np.float32)
