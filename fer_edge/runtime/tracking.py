"""Keeping faces apart over time: an IoU tracker, template following and EMA smoothing.

Why: a per-frame classifier flickers between neighbouring classes (neutral/sad,
fear/surprise) on a face that does not change. Giving each face a track id (greedy IoU
matching of detections to the previous boxes) lets the stream mode smooth that face's
probabilities with an exponential moving average, so labels change only when the
expression does. Tracks also carry a small grayscale template of the face, so that on the
frames where detection is skipped (``--detect-every N``) the box follows the face by
template matching in a window around its last position, which costs far less than a
detector pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

TEMPLATE_WIDTH = 32  # faces are matched at this width: plenty for a face, cheap to match


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every ``x, y, w, h`` box in ``a`` (M, 4) with every box in ``b`` (N, 4)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, col) taken in decreasing IoU order, each row and column at most once."""
    pairs = []
    if iou.size == 0:
        return pairs
    used_r, used_c = set(), set()
    for flat in np.argsort(-iou, axis=None):
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < threshold:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


@dataclass
class Track:
    id: int
    box: np.ndarray  # x, y, w, h (int)
    probs: Optional[np.ndarray] = None  # smoothed class probabilities
    missed: int = 0  # consecutive detection rounds without a matching detection
    hits: int = 1  # detection rounds that matched this track (including the first)
    template: Optional[np.ndarray] = field(default=None, repr=False)
    scale: float = 1.0  # template scale: TEMPLATE_WIDTH / box width at capture
    # (5, 2) face landmarks relative to the box's top-left corner (None: the detector has
    # none): they move with the box when it is followed, so the crop stays aligned
    landmarks: Optional[np.ndarray] = field(default=None, repr=False)
    score: float = float("nan")  # the detector's score of the detection the track last matched (NaN: none)


class FaceTracker:
    """Track ids, box following and probability smoothing for the stream mode.

    ``alpha`` is the EMA weight of the newest frame (1.0 = no smoothing); at 30 FPS the
    default 0.35 lets a real change of expression take over in about 5 frames (~0.15 s)
    while a single-frame blip moves the probabilities by a third at most. ``max_missed``
    keeps a track (followed by template) through that many detection rounds without a
    detection, which hides one-off detector misses; ``min_follow_score`` drops it sooner
    when the template no longer matches (the face has gone). ``min_hits``: a new track is
    reported only once that many detection rounds have found it, which hides the Haar
    cascade's one-off false positives on textured backgrounds at the cost of one detection
    round of latency for a new face.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        alpha: float = 0.35,
        smooth: bool = True,
        max_missed: int = 2,
        follow: bool = True,
        min_follow_score: float = 0.5,
        min_hits: int = 1,
    ):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.iou_threshold = iou_threshold
        self.alpha = alpha if smooth else 1.0
        self.max_missed = max_missed
        self.follow_enabled = follow
        self.min_follow_score = min_follow_score
        self.min_hits = max(1, int(min_hits))
        self.tracks: list[Track] = []
        self._next_id = 1

    # ------------------------------------------------------------------ detection frames
    def update(self, boxes: np.ndarray, gray: Optional[np.ndarray] = None,
               landmarks: Optional[np.ndarray] = None, scores: Optional[np.ndarray] = None) -> tuple[list[int], np.ndarray]:
        """Match this frame's detections to tracks; returns (track ids, boxes) of the faces to classify.

        Matched and new tracks take the detected box (and ``landmarks`` ``(K, 5, 2)``, when
        given; see :meth:`landmarks_of`) and score (``scores`` ``(K,)``, see :meth:`scores_of`);
        unmatched tracks are followed by template (when ``gray`` is given) until they have
        missed ``max_missed`` rounds.
        """
        det = np.asarray(boxes, dtype=np.int32).reshape(-1, 4)
        lms = None if landmarks is None else np.asarray(landmarks, dtype=np.float32).reshape(len(det), 5, 2)
        sc = np.full(len(det), np.nan, np.float32) if scores is None else np.asarray(scores, np.float32).reshape(len(det))
        prev = np.array([t.box for t in self.tracks], dtype=np.int32).reshape(-1, 4)
        pairs = greedy_match(iou_matrix(prev, det), self.iou_threshold)
        matched_t = {r for r, _ in pairs}
        matched_d = {c for _, c in pairs}
        ids, out = [], []
        kept: list[Track] = []
        for r, c in pairs:
            t = self.tracks[r]
            t.box, t.missed = det[c].copy(), 0
            t.hits += 1
            t.landmarks = _relative(lms, c, t.box)
            t.score = float(sc[c])
            self._capture(t, gray)
            kept.append(t)
        for c in range(len(det)):
            if c not in matched_d:
                t = Track(id=self._next_id, box=det[c].copy(), landmarks=_relative(lms, c, det[c]), score=float(sc[c]))
                self._next_id += 1
                self._capture(t, gray)
                kept.append(t)
        for r, t in enumerate(self.tracks):
            if r in matched_t:
                continue
            t.missed += 1
            if t.missed > self.max_missed or not self._follow(t, gray):
                continue  # gone
            kept.append(t)
        self.tracks = kept
        for t in kept:
            if t.hits >= self.min_hits:
                ids.append(t.id)
                out.append(t.box)
        return ids, np.array(out, dtype=np.int32).reshape(-1, 4)

    # ------------------------------------------------------------------ in-between frames
    def follow(self, gray: Optional[np.ndarray]) -> tuple[list[int], np.ndarray]:
        """Move every track's box to where its template matches best in ``gray``."""
        self.tracks = [t for t in self.tracks if self._follow(t, gray)]
        shown = [t for t in self.tracks if t.hits >= self.min_hits]
        return [t.id for t in shown], np.array([t.box for t in shown], dtype=np.int32).reshape(-1, 4)

    def smooth(self, ids: list[int], probs: np.ndarray) -> np.ndarray:
        """EMA of each track's probabilities; returns the smoothed ``(K, C)`` array."""
        by_id = {t.id: t for t in self.tracks}
        out = np.array(probs, dtype=np.float32, copy=True).reshape(len(ids), -1)
        for i, tid in enumerate(ids):
            t = by_id.get(tid)
            if t is None:
                continue
            if t.probs is None or self.alpha >= 1.0 or t.probs.shape != out[i].shape:
                t.probs = out[i].copy()
            else:
                t.probs = self.alpha * out[i] + (1.0 - self.alpha) * t.probs
            out[i] = t.probs
        return out

    def landmarks_of(self, ids: list[int]) -> np.ndarray:
        """``(K, 5, 2)`` landmarks of the tracks ``ids`` where their boxes are now (NaN where unknown)."""
        by_id = {t.id: t for t in self.tracks}
        out = np.full((len(ids), 5, 2), np.nan, dtype=np.float32)
        for i, tid in enumerate(ids):
            t = by_id.get(tid)
            if t is not None and t.landmarks is not None and t.landmarks.shape == (5, 2):
                out[i] = t.landmarks + t.box[:2].astype(np.float32)
        return out

    def scores_of(self, ids: list[int]) -> np.ndarray:
        """``(K,)`` detector scores of the tracks ``ids`` (their last matched detection's; NaN where unknown)."""
        by_id = {t.id: t for t in self.tracks}
        return np.array([by_id[tid].score if tid in by_id else np.nan for tid in ids], dtype=np.float32)

    def reset(self) -> None:
        self.tracks = []

    # ------------------------------------------------------------------ templates
    def _capture(self, t: Track, gray: Optional[np.ndarray]) -> None:
        if not self.follow_enabled or gray is None:
            t.template = None
            return
        import cv2

        x, y, w, h = (int(v) for v in t.box)
        if w < 4 or h < 4:
            t.template = None
            return
        t.scale = TEMPLATE_WIDTH / w
        patch = gray[y: y + h, x: x + w]
        t.template = cv2.resize(patch, (TEMPLATE_WIDTH, max(4, round(h * t.scale))), interpolation=cv2.INTER_AREA)

    def _follow(self, t: Track, gray: Optional[np.ndarray]) -> bool:
        """Update ``t.box`` by template matching; False when the face is no longer there."""
        if t.template is None or gray is None:
            return True  # nothing to follow with: keep the last box
        import cv2

        H, W = gray.shape[:2]
        x, y, w, h = (int(v) for v in t.box)
        # search window: the box grown by half its size on every side
        x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
        x1, y1 = min(W, x + w + w // 2), min(H, y + h + h // 2)
        if x1 - x0 < w or y1 - y0 < h:
            return True
        window = gray[y0:y1, x0:x1]
        s = t.scale
        small = cv2.resize(window, (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))), interpolation=cv2.INTER_AREA)
        th, tw = t.template.shape[:2]
        if small.shape[0] < th or small.shape[1] < tw:
            return True
        res = cv2.matchTemplate(small, t.template, cv2.TM_CCOEFF_NORMED)
        _, score, _, loc = cv2.minMaxLoc(res)
        if not np.isfinite(score) or score < self.min_follow_score:
            return False
        nx = int(round(x0 + loc[0] / s))
        ny = int(round(y0 + loc[1] / s))
        nx = min(max(0, nx), W - w)
        ny = min(max(0, ny), H - h)
        t.box = np.array([nx, ny, w, h], dtype=np.int32)
        return True


def _relative(landmarks: Optional[np.ndarray], i: int, box: np.ndarray) -> Optional[np.ndarray]:
    """Row ``i`` of ``landmarks`` relative to ``box``'s corner; None when absent or not finite."""
    if landmarks is None or i >= len(landmarks) or not np.isfinite(landmarks[i]).all():
        return None
    return landmarks[i] - np.asarray(box[:2], dtype=np.float32)
