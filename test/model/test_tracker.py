"""IDOL tracker: ids across frames, new objects, duplicates, backdrops, track life, reset."""
import torch

from hyperseg_ros.model.tracker import IdolTracker, TrackerMemory

H, W, R = 40, 60, 16


def box_mask(x: int, y: int, w: int = 10, h: int = 10) -> torch.Tensor:
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[y : y + h, x : x + w] = True
    return mask


def identities(n: int) -> torch.Tensor:
    """n well-separated re-id embeddings [n,R]."""
    g = torch.Generator().manual_seed(0)
    return torch.linalg.qr(torch.randn(R, R, generator=g))[0][:n] * 8.0


def noisy(e: torch.Tensor, seed: int) -> torch.Tensor:
    return e + 0.3 * torch.randn(e.shape, generator=torch.Generator().manual_seed(seed))


def step(tracker, memory, frame, dets):
    """dets: list of (mask, score, embedding, label)."""
    if not dets:
        return tracker.update(memory, torch.zeros(0, H, W, dtype=torch.bool), torch.zeros(0),
                              torch.zeros(0, R), torch.zeros(0, dtype=torch.long), frame)
    masks, scores, embeds, labels = zip(*dets)
    return tracker.update(memory, torch.stack(masks), torch.tensor(scores), torch.stack(embeds),
                          torch.tensor(labels), frame)


def test_moving_objects_keep_their_ids_and_new_objects_get_new_ones():
    tracker, memory = IdolTracker(), TrackerMemory()
    e = identities(3)
    seen = []
    for frame in range(6):
        dets = [(box_mask(2 + 4 * frame, 5), 0.9, noisy(e[0], frame), 1),
                (box_mask(45 - 4 * frame, 25), 0.8, noisy(e[1], 100 + frame), 2)]
        if frame >= 3:  # a third object enters; detections arrive in a different order
            dets = [(box_mask(20, 28), 0.95, noisy(e[2], 200 + frame), 1)] + dets[::-1]
        seen.append(step(tracker, memory, frame, dets))
    assert seen[:3] == [[1, 2]] * 3
    assert seen[3:] == [[3, 2, 1]] * 3
    assert sorted(memory.tracks) == [1, 2, 3] and memory.next_id == 4
    assert memory.tracks[2].label == 2 and memory.tracks[2].last_frame == 5


def test_embedding_memory_uses_momentum():
    tracker, memory = IdolTracker(momentum=0.5), TrackerMemory()
    e = identities(1)[0]
    step(tracker, memory, 0, [(box_mask(0, 0), 0.9, e, 0)])
    step(tracker, memory, 1, [(box_mask(1, 0), 0.9, 3 * e, 0)])
    torch.testing.assert_close(memory.tracks[1].embedding, 2 * e)


def test_duplicates_are_dropped_by_mask_nms():
    tracker, memory = IdolTracker(), TrackerMemory()
    e = identities(2)
    dup = box_mask(10, 10)
    dup[10, 9] = True  # IoU ~0.99 with the better detection
    ids = step(tracker, memory, 0, [(dup, 0.6, e[1], 0), (box_mask(10, 10), 0.9, e[0], 0)])
    assert ids == [0, 1]
    assert list(memory.tracks) == [1]


def test_one_track_goes_to_one_detection():
    tracker, memory = IdolTracker(), TrackerMemory()
    e = identities(2)
    step(tracker, memory, 0, [(box_mask(0, 0), 0.9, e[0], 0)])
    # Two non-overlapping detections look like track 1; only the better one may take it.
    ids = step(tracker, memory, 1, [(box_mask(0, 0), 0.9, e[0], 0), (box_mask(40, 20), 0.7, e[0], 0)])
    assert ids == [1, 2]


def test_low_scores_start_tracks_only_on_an_empty_memory():
    tracker, memory = IdolTracker(), TrackerMemory()
    e = identities(3)
    assert step(tracker, memory, 0, [(box_mask(0, 0), 0.3, e[0], 0)]) == [1]  # > init_score 0.2
    ids = step(tracker, memory, 1, [(box_mask(0, 0), 0.9, e[0], 0), (box_mask(40, 20), 0.3, e[1], 0),
                                    (box_mask(2, 2), 0.3, e[2], 0)])
    assert ids == [1, 0, 0]  # below addnew_score 0.5: a backdrop, and a duplicate of track 1's mask
    ids = step(tracker, memory, 2, [(box_mask(0, 0), 0.9, e[0], 0), (box_mask(40, 20), 0.6, e[1], 0)])
    assert ids == [1, 2]


def test_tracks_are_forgotten_after_track_life_frames():
    tracker, memory = IdolTracker(track_life=10), TrackerMemory()
    e = identities(2)
    assert step(tracker, memory, 0, [(box_mask(0, 0), 0.9, e[0], 0)]) == [1]
    for frame in range(1, 10):
        step(tracker, memory, frame, [])
    assert 1 in memory.tracks  # unseen for 9 frames
    assert step(tracker, memory, 9, [(box_mask(0, 0), 0.9, e[0], 0)]) == [1]
    for frame in range(10, 20):
        step(tracker, memory, frame, [])
    assert memory.tracks == {}  # unseen for 10 frames
    assert step(tracker, memory, 20, [(box_mask(0, 0), 0.9, e[0], 0)]) == [2]


def test_reset_restarts_ids():
    tracker, memory = IdolTracker(), TrackerMemory()
    e = identities(2)
    step(tracker, memory, 0, [(box_mask(0, 0), 0.9, e[0], 0), (box_mask(30, 20), 0.9, e[1], 0)])
    memory.reset()
    assert memory.tracks == {} and memory.next_id == 1
    assert step(tracker, memory, 1, [(box_mask(30, 20), 0.9, e[1], 0)]) == [1]


def test_update_depends_only_on_its_arguments():
    e = identities(2)
    frames = [[(box_mask(5 * f, 0), 0.9, noisy(e[0], f), 0), (box_mask(30, 20), 0.7, noisy(e[1], 9 + f), 1)]
              for f in range(3)]
    tracker = IdolTracker()
    runs = []
    for _ in range(2):
        memory = TrackerMemory()
        runs.append([step(tracker, memory, f, dets) for f, dets in enumerate(frames)])
    assert runs[0] == runs[1] == [[1, 2]] * 3


def test_a_track_outlives_a_dip_below_the_threshold_that_a_new_object_needs():
    """start_at = the answer's threshold (0.4): a track started at 0.6 keeps its id at 0.3, while a new object at
    0.3 starts nothing, on the first frame as on later ones."""
    tracker, memory = IdolTracker(), TrackerMemory()
    e = identities(2)
    assert step_at(tracker, memory, 0, [(box_mask(5, 5), 0.6, e[0], 0), (box_mask(30, 20), 0.3, e[1], 1)], 0.4) == [1, 0]
    assert step_at(tracker, memory, 1, [(box_mask(5, 5), 0.3, noisy(e[0], 1), 0)], 0.4) == [1]
    assert step_at(tracker, memory, 2, [(box_mask(5, 5), 0.7, noisy(e[0], 2), 0),
                                        (box_mask(30, 20), 0.3, e[1], 1)], 0.4) == [1, 0]


def step_at(tracker, memory, frame, dets, start_at):
    masks, scores, embeds, labels = zip(*dets)
    return tracker.update(memory, torch.stack(masks), torch.tensor(scores), torch.stack(embeds),
                          torch.tensor(labels), frame, start_at=start_at)


def test_pieces_sharing_one_embedding_keep_their_ids_by_their_place():
    """Two pieces of one query's mask (mask_pieces.py) carry the same embedding; each keeps its track while
    the pair drifts, and swapping their order in the input swaps nothing. Without the overlap term their
    tracks split the bi-softmax and neither is matched."""
    e = identities(1)[0]
    for weight, want in ((4.0, [[1, 2], [2, 1], [1, 2]]), (0.0, [[1, 2], [4, 3], [5, 6]])):
        tracker, memory = IdolTracker(overlap_weight=weight), TrackerMemory()
        seen = []
        for frame in range(3):
            left, right = (box_mask(5 + frame, 5), 0.9, e, 0), (box_mask(40 - frame, 20), 0.85, e, 0)
            seen.append(step(tracker, memory, frame, [right, left] if frame == 1 else [left, right]))
        assert seen == want, weight


def test_a_first_frame_starts_tracks_from_the_answer_threshold_where_it_is_below_init_score():
    e = identities(2)
    dets = [(box_mask(0, 0), 0.15, e[0], 0), (box_mask(40, 20), 0.08, e[1], 0)]
    masks, scores, embeds, labels = zip(*dets)
    args = (torch.stack(masks), torch.tensor(scores), torch.stack(embeds), torch.tensor(labels), 0)
    assert IdolTracker().update(TrackerMemory(), *args) == [0, 0]  # IDOL's init_score 0.2
    assert IdolTracker().update(TrackerMemory(), *args, start_at=0.1) == [1, 0]  # a model calibrated at 0.1
    assert IdolTracker().update(TrackerMemory(), *args, start_at=0.3) == [0, 0]  # never below the threshold
