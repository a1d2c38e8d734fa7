"""IDOL-style instance association across frames (reference §6).

Per frame, detections (best first) go through mask NMS, are matched to remembered tracks by
bi-softmax similarity of their re-id embeddings (one-to-one, greedy in score order), and unmatched
confident ones start new tracks; the rest are backdrops or duplicates (id 0). Tracks keep a momentum
average of their embeddings and are forgotten after `track_life` frames unseen.

Not in the release: the similarity also counts `overlap_weight` x the mask IoU with the track's last mask.
The pieces of one query's mask (mask_pieces.py) carry that query's embedding, so only their place tells
them apart; without it, they shared their tracks' probability and every frame started new tracks.

All state lives in `TrackerMemory`; `IdolTracker` holds only thresholds, so `update` depends on
nothing but its arguments (it updates the memory it is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Track:
    """embedding: [R] float32 momentum average; last_frame: frame index last matched; label: class id;
    mask: [H,W] bool, its last mask."""

    embedding: torch.Tensor
    last_frame: int
    label: int
    mask: torch.Tensor | None = None


@dataclass
class TrackerMemory:
    """tracks: id (>= 1) -> Track, in creation order; next_id: id the next new track gets."""

    tracks: dict[int, Track] = field(default_factory=dict)
    next_id: int = 1

    def reset(self) -> None:
        """Forget every track and restart ids at 1 (new command, new stream)."""
        self.tracks.clear()
        self.next_id = 1


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a [N,H,W] bool, b [M,H,W] bool -> [N,M] float32 IoU (0 for two empty masks)."""
    a, b = a.flatten(1).float(), b.flatten(1).float()
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return inter / union.clamp(min=1.0)


class IdolTracker:
    """Thresholds of IDOL's tracker (defaults as released)."""

    def __init__(
        self,
        match_threshold: float = 0.5,
        momentum: float = 0.5,
        track_life: int = 10,
        nms_pre: float = 0.7,
        nms_post: float = 0.3,
        init_score: float = 0.2,
        addnew_score: float = 0.5,
        overlap_weight: float = 4.0,
    ):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.match_threshold = match_threshold
        self.momentum = momentum
        self.track_life = track_life
        self.nms_pre = nms_pre
        self.nms_post = nms_post
        self.init_score = init_score
        self.addnew_score = addnew_score
        self.overlap_weight = overlap_weight  # embeddings' similarities: median 7, a row's best ~1.4 over its median

    def update(
        self,
        memory: TrackerMemory,
        masks: torch.Tensor,
        scores: torch.Tensor,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        frame_index: int,
        start_at: float | None = None,
    ) -> list[int]:
        """masks [N,H,W] bool, scores [N] float, embeddings [N,R] float, labels [N] int, frame_index
        (increasing) -> one id per detection, in input order: >= 1 a track, 0 dropped (duplicate,
        backdrop or low score). A new track needs a score of at least start_at too (the answer's
        threshold, where detections below it are passed in to keep their tracks); on a first frame
        start_at replaces init_score where it is lower. Updates `memory` in place."""
        n = scores.shape[0]
        ids = [0] * n
        order = torch.argsort(scores.float(), descending=True, stable=True).tolist()
        masks, scores = masks[order], scores.float()[order].tolist()
        embeddings, labels = embeddings.float()[order], labels[order].tolist()
        ious = mask_iou(masks, masks).tolist() if n else []

        # Mask NMS: a detection overlapping a better kept one by IoU > nms_pre is dropped.
        kept: list[int] = []
        for i in range(n):
            if all(ious[i][j] <= self.nms_pre for j in kept):
                kept.append(i)

        assigned: dict[int, int] = {}  # position in `order` -> track id
        if kept and memory.tracks:
            track_ids = list(memory.tracks)
            memo = torch.stack([memory.tracks[t].embedding for t in track_ids])
            similarity = embeddings[kept] @ memo.T + self.overlap_weight * self._overlap(masks[kept], memory, track_ids)
            match = (similarity.softmax(1) + similarity.softmax(0)) / 2  # bi-softmax
            for row, i in enumerate(kept):
                conf, col = match[row].max(0)
                if conf > self.match_threshold:
                    assigned[i] = track_ids[int(col)]
                    match[:, col] = 0  # one detection per track
            start_score = self.addnew_score
        else:
            # empty memory: a stream's first frame. A model calibrated below IDOL's init_score answers from its own
            # threshold (start_at), so that frame 1 answers as a single image is answered.
            start_score = self.init_score if start_at is None else min(self.init_score, start_at)
        for i in kept:
            if i not in assigned and scores[i] > start_score and scores[i] >= (start_at or 0.0):
                assigned[i] = memory.next_id
                memory.next_id += 1
        # Unassigned detections keep id 0: backdrops, or duplicates (IoU >= nms_post with a better one).
        for i, track_id in assigned.items():
            track = memory.tracks.get(track_id)
            if track is None:
                memory.tracks[track_id] = Track(embeddings[i].clone(), frame_index, labels[i], masks[i])
            else:
                track.embedding = (1 - self.momentum) * track.embedding + self.momentum * embeddings[i]
                track.last_frame, track.label, track.mask = frame_index, labels[i], masks[i]
            ids[order[i]] = track_id
        for track_id in [t for t, tr in memory.tracks.items() if frame_index - tr.last_frame >= self.track_life]:
            del memory.tracks[track_id]
        return ids

    @staticmethod
    def _overlap(masks: torch.Tensor, memory: TrackerMemory, track_ids: list[int]) -> torch.Tensor:
        """masks [K,H,W] bool -> [K,T] IoU with each track's last mask (0 where it has none of this size)."""
        overlap = masks.new_zeros((masks.shape[0], len(track_ids)), dtype=torch.float32)
        for col, track_id in enumerate(track_ids):
            last = memory.tracks[track_id].mask
            if last is not None and last.shape == masks.shape[1:]:
                overlap[:, col] = mask_iou(masks, last[None])[:, 0]
        return overlap
