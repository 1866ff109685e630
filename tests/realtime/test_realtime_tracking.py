"""Person boxes (keypoints -> box, lost -> whole frame) and batched multi-person inference."""

from __future__ import annotations

import numpy as np
import pytest
import rt_helpers as h

from edgepose.coords import WHOLE_IMAGE_PADDING, apply_affine
from edgepose.topdown import crop_people, crop_to_image, infer
from edgepose.preprocess import box_affine
from edgepose.realtime.smoothing import smooth_tracks
from edgepose.realtime.boxes import iou
from edgepose.realtime.tracking import PersonTracker, TrackOptions, keypoint_box

FRAME = (320, 240)  # w, h


def test_keypoint_box_expanded_and_clipped():
    opts = TrackOptions(conf=0.3, min_joints=4, expand=1.2)
    c = np.array([[100.0, 50.0], [140.0, 50.0], [100.0, 150.0], [140.0, 150.0], [5, 5]])
    s = np.array([0.9, 0.9, 0.9, 0.9, 0.1])  # the low-score joint is ignored
    x, y, w, hh = keypoint_box(c, s, FRAME, opts)
    # confident extent: x 99.5..140.5 (41 px), y 49.5..150.5 (101 px) -> x1.2 about centre
    assert w == pytest.approx(41 * 1.2) and hh == pytest.approx(101 * 1.2)
    assert x + w / 2 == pytest.approx(120.0) and y + hh / 2 == pytest.approx(100.0)
    edge = np.array([[300.0, 200.0], [319.0, 239.0], [310.0, 220.0], [305.0, 230.0]])
    x, y, w, hh = keypoint_box(edge, np.ones(4), FRAME, opts)
    assert x + w <= 320 and y + hh <= 240, "box must be clipped to the frame"
    assert keypoint_box(c, np.array([0.9, 0.9, 0.9, 0.1, 0.1]), FRAME, opts) is None


def test_single_person_tracks_then_reacquires_from_whole_frame():
    tr = PersonTracker(TrackOptions(conf=0.3, min_joints=4))
    img = np.zeros((240, 320, 3), np.uint8)
    (t,) = tr.boxes(img)
    assert np.allclose(t.box, [0, 0, 320, 240]) and t.padding == WHOLE_IMAGE_PADDING, \
        "first box = whole frame"
    c = np.array([[100.0 + 10 * j, 60.0 + 8 * j] for j in range(17)])
    kept = tr.update([t], c[None], np.full((1, 17), 0.9), FRAME)
    smooth_tracks(kept, 0.0)
    assert t.smooth and t.smoother._x is not None, "a confident pose is smoothed"
    (t,) = tr.boxes(img)
    assert t.box[2] < 320 and not t.fresh, "after a confident pose the box follows it"
    kept = tr.update([t], c[None], np.full((1, 17), 0.1), FRAME)  # lost
    smooth_tracks(kept, 0.033)
    (t,) = tr.boxes(img)
    assert np.allclose(t.box, [0, 0, 320, 240]) and tr.lost == 1
    assert t.smoother._x is None, "smoothing must reset when tracking is lost"


def test_multi_person_one_batched_call_maps_back_to_each_box():
    meta = h.tiny_meta()
    boxes = [np.array([10.0, 20, 60, 120]), np.array([150.0, 40, 50, 100]),
             np.array([240.0, 10, 70, 200])]
    tracker = PersonTracker(TrackOptions(multi=True, detect_every=5),
                            detector=lambda img: [b.copy() for b in boxes])
    be = h.CentreBackend(meta)
    img = np.zeros((240, 320, 3), np.uint8)
    tracks = tracker.boxes(img)
    assert len(tracks) == 3
    batch, mats = crop_people(meta, img, [t.box for t in tracks], [t.padding for t in tracks])
    coords, scores = infer(be, batch)
    frame_xy = crop_to_image(coords, mats)
    assert be.batches == [(3, 3, 64, 48)], "all crops must go in one backend call"
    out = be(np.zeros((1, 3, 64, 48), np.float32))["coords"][0]
    for t, got in zip(tracks, frame_xy):
        want = apply_affine(out, np.linalg.inv(np.vstack([box_affine(t.box, meta, t.padding),
                                                           [0, 0, 1]]))[:2])
        assert np.abs(got - want).max() < 1e-6
        centre = t.box[:2] + t.box[2:] / 2 - 0.5
        assert np.abs(got.mean(0) - centre).max() < 1.0, "ring of joints centred on the box"
    kept = tracker.update(tracks, frame_xy, scores, FRAME)
    assert len(kept) == 3 and len({t.id for t in kept}) == 3
    # the next detection round matches the same people instead of adding new tracks
    for _ in range(5):
        tracker.boxes(img)
    assert len(tracker.tracks) == 3


def test_iou():
    a = np.array([0.0, 0, 10, 10])
    assert iou(a, a) == pytest.approx(1.0)
    assert iou(a, np.array([5.0, 0, 10, 10])) == pytest.approx(50 / 150)
    assert iou(a, np.array([20.0, 20, 5, 5])) == 0.0


def test_multi_uses_the_person_detector():
    from edgepose.realtime.tracking import PersonDetector

    tr = PersonTracker(TrackOptions(multi=True))
    assert isinstance(tr.detector, PersonDetector)
    assert tr.boxes(np.zeros((240, 320, 3), np.uint8)) == [], "no people in a black frame"


def test_tracked_box_shrinks_at_most_15_percent_per_frame():
    tr = PersonTracker(TrackOptions(conf=0.3, min_joints=4, max_shrink=0.85))
    img = np.zeros((240, 320, 3), np.uint8)
    big = np.array([[100.0 + 6 * j, 20.0 + 12 * j] for j in range(17)])
    (t,) = tr.boxes(img)
    tr.update([t], big[None], np.full((1, 17), 0.9), FRAME)
    w0, h0 = t.box[2:]
    small = (big - big.mean(0)) * 0.3 + big.mean(0)  # joints suddenly 70 % closer together
    tr.update([t], small[None], np.full((1, 17), 0.9), FRAME)
    assert t.box[2] == pytest.approx(0.85 * w0) and t.box[3] == pytest.approx(0.85 * h0)
    for i in range(30):  # a persistent change is followed within a few frames
        tr.update([t], small[None], np.full((1, 17), 0.9), FRAME)
    want = keypoint_box(small, np.full(17, 0.9), FRAME, tr.opts)
    assert np.allclose(t.box, want), "the box must reach the new size"


def scripted_tracker(**opts):
    """A --multi tracker whose detector returns ``dets[0]`` (one box to start with), a
    frame, and a confident pose inside that box: (box, dets, tracker, frame, (coords,
    scores))."""
    box = np.array([100.0, 50.0, 60.0, 150.0])
    dets = [[box]]
    tr = PersonTracker(TrackOptions(multi=True, detect_every=1, **opts),
                       detector=lambda img: dets[0])
    k = 17
    pose = (np.tile(box[:2] + box[2:] / 2, (k, 1)) + np.linspace(-20, 20, k)[:, None],
            np.full(k, 0.9))
    return box, dets, tr, np.zeros((240, 640, 3), np.uint8), pose


def test_multi_a_briefly_lost_person_keeps_their_id():
    """A track that ends (a frame without enough confident joints) is picked up again by
    the next detection where it was last seen, under its own id, within keep_lost frames;
    later, or elsewhere, a detection is a new person. (max_coast 0: the track ends at its
    first weak frame; coasting is the next test.)"""
    other = np.array([400.0, 50.0, 60.0, 150.0])
    box, dets, tr, frame, good = scripted_tracker(keep_lost=5, max_coast=0)
    bad = (good[0], np.zeros(len(good[1])))  # nobody confident: the track ends

    (t,) = tr.boxes(frame)
    assert t.id == 0, "no id before the first pose"
    tr.update([t], good[0][None], good[1][None], (640, 240))
    first = t.id
    assert first == 1
    assert tr.update(tr.boxes(frame), bad[0][None], bad[1][None], (640, 240)) == []
    assert tr.tracks == []
    (t,) = tr.boxes(frame)  # detected again where they were: the same person
    assert t.id == first and t.fresh and tr.revived == 1
    tr.update([t], bad[0][None], bad[1][None], (640, 240))  # ends again
    dets[0] = [other]
    (t,) = tr.boxes(frame)  # somebody elsewhere, with no confident joints: never numbered
    tr.update([t], bad[0][None], bad[1][None], (640, 240))
    assert t.id == 0
    dets[0] = []
    for _ in range(6):  # longer than keep_lost with nobody detected
        tr.boxes(frame)
    dets[0] = [box]
    (t,) = tr.boxes(frame)
    tr.update([t], good[0][None], good[1][None], (640, 240))
    assert t.id == 0, "a newcomer after the opening frame waits for a second pose"
    (t,) = tr.boxes(frame)
    tr.update([t], good[0][None], good[1][None], (640, 240))
    assert t.id == 2, "remembered only keep_lost frames: a new person, the next number"


def test_multi_a_weak_frame_coasts_under_the_same_id():
    """Issue 32: a track whose joints are weak for a frame is not shown but keeps its box
    and id (coasting, up to max_coast frames); when the pose comes back it is the same
    person -- no new id, nothing counted as lost."""
    box, dets, tr, frame, good = scripted_tracker(max_coast=3)
    bad = (good[0], np.zeros(len(good[1])))
    (t,) = tr.boxes(frame)
    tr.update([t], good[0][None], good[1][None], (640, 240))
    dets[0] = []  # the detector misses them too
    for _ in range(2):
        assert tr.update(tr.boxes(frame), bad[0][None], bad[1][None], (640, 240)) == []
        assert len(tr.tracks) == 1 and tr.tracks[0].misses >= 1 and tr.lost == 0
    (t,) = tr.boxes(frame)
    assert [p.id for p in tr.update([t], good[0][None], good[1][None], (640, 240))] == [1]
    for _ in range(4):  # longer than max_coast: the track ends
        tracks = tr.boxes(frame)
        if tracks:
            tr.update(tracks, bad[0][None], bad[1][None], (640, 240))
    assert tr.tracks == [] and tr.lost == 1


def test_multi_a_detection_on_a_tracked_person_starts_no_second_track():
    """A detection of an already tracked person that the box matching missed (a keypoint
    box and a detector box disagree) starts no second track: it lies mostly on the tracked
    person, so the frame shows that person once, under one id."""
    box, dets, tr, frame, pose = scripted_tracker(match_iou=0.99)
    (t,) = tr.boxes(frame)
    tr.update([t], pose[0][None], pose[1][None], (640, 240))
    dets[0] = [box + [30, 0, 0, 0]]  # IoU < match_iou and inside less than 0.6: unmatched
    tracks = tr.boxes(frame)
    assert len(tracks) == 1 and tracks[0].id == 1
    kept = tr.update(tracks, pose[0][None], pose[1][None], (640, 240))
    assert [p.id for p in kept] == [1] and tr._next_id == 1


def test_multi_two_tracks_on_one_person_keep_both_ids():
    """Two people side by side: when the newer track's pose drifts onto the older track's
    person (their boxes now one), the older keeps the person and the newer keeps its id,
    back on its own last box, coasting, not shown -- instead of dying and coming back as a
    new id at the next detection (vtest.avi: 105 ids -> 51)."""
    box, dets, tr, frame, pose = scripted_tracker()
    other = box + [80, 0, 0, 0]
    dets[0] = [box, other]
    a, b = tr.boxes(frame)
    shifted = pose[0] + [80, 0]
    kept = tr.update([a, b], np.stack([pose[0], shifted]), np.stack([pose[1]] * 2), (640, 240))
    assert sorted(p.id for p in kept) == [1, 2]
    dets[0] = []
    a, b = tr.boxes(frame)
    kept = tr.update([a, b], np.stack([pose[0], pose[0]]), np.stack([pose[1]] * 2), (640, 240))
    assert [p.id for p in kept] == [1]  # the drifted one is not shown...
    assert sorted(t.id for t in tr.tracks) == [1, 2]  # ...but keeps its id
    drifted = next(t for t in tr.tracks if t.id == 2)
    assert drifted.misses == 1 and drifted.box[0] > box[0] + 40, "back on its own box"


def test_near_boxes_are_one_size_and_half_a_height_apart():
    from edgepose.realtime.boxes import near

    a = np.array([100.0, 100.0, 30.0, 80.0])
    assert near(a, a + [20, 10, 0, 0])  # walked 22 px: IoU 0.32 at this size, still near
    assert not near(a, a + [60, 0, 0, 0])  # 60 px away: someone else
    assert not near(a, np.array([100.0, 100.0, 90.0, 200.0]))  # 2.5x taller


@pytest.mark.parametrize("smooth", [0.0, 0.1, 0.5])
def test_multi_a_walking_person_is_cropped_where_they_will_be(smooth):
    """Issue 32's motion model: a person walking 6 px a frame to the right. The next crop
    is the keypoint box moved on by the running velocity (EMA with weight ``smooth``:
    6 (1 - (1 - smooth)^n) px after n steps); a coasting frame keeps walking; off (0), the
    box stays where the person was."""
    k = 17
    step = 6.0
    base = np.array([[60.0 + (j % 4) * 10, 40.0 + j * 8] for j in range(k)])
    tr = PersonTracker(TrackOptions(multi=True, detect_every=1000, velocity_smooth=smooth),
                       detector=lambda img: [np.array([50.0, 30, 60, 150])])
    frame = np.zeros((240, 640, 3), np.uint8)
    n = 12
    for i in range(n):
        (t,) = tr.boxes(frame)
        kp = base + [step * i, 0.0]
        tr.update([t], kp[None], np.full((1, k), 0.9), (640, 240))
    kb = keypoint_box(base + [step * (n - 1), 0.0], np.full(k, 0.9), (640, 240), tr.opts)
    # n poses: the first (on the detection's box) only sets the centre, n - 1 steps follow
    want = step * (1 - (1 - smooth) ** (n - 1)) if smooth else 0.0
    assert t.velocity[0] == pytest.approx(want) and t.velocity[1] == pytest.approx(0.0)
    assert t.box[0] == pytest.approx(kb[0] + want) and t.box[1] == pytest.approx(kb[1])
    # a coasting frame (joints too weak): the box moves on by the velocity again
    before = t.box.copy()
    (t,) = tr.boxes(frame)
    tr.update([t], (base + [step * n, 0.0])[None], np.zeros((1, k)), (640, 240))
    assert t.misses == 1 and t.box[0] == pytest.approx(before[0] + want)


def test_multi_a_neighbours_pose_teaches_no_motion_and_ends_after_max_coast():
    """Two people walking right side by side (6 px a frame). From frame 8 on, B's crop
    returns A's pose (the model locked onto the more visible neighbour): B goes back to its
    own crop box, walking on at ITS velocity (before issue 32's fix the wrong pose taught
    it a leftward jump and B never ended: a zombie track between the two), and after
    max_coast such frames B ends, its id kept for a detection to revive."""
    k = 17
    step = 6.0
    shape = np.array([[(j % 4) * 10.0, 40.0 + j * 8] for j in range(k)])
    starts = [np.array([40.0, 30, 60, 150]), np.array([110.0, 30, 60, 150])]
    tr = PersonTracker(TrackOptions(multi=True, detect_every=1000, max_coast=3),
                       detector=lambda img: starts)
    frame = np.zeros((240, 640, 3), np.uint8)
    a_id = b_id = None
    for i in range(8):
        tracks = tr.boxes(frame)
        poses = np.stack([shape + [50.0 + step * i, 0.0], shape + [120.0 + step * i, 0.0]])
        shown = tr.update(tracks, poses, np.full((2, k), 0.9), (640, 240))
        a_id, b_id = shown[0].id, shown[1].id
    b = next(t for t in tr.tracks if t.id == b_id)
    v_before = b.velocity.copy()
    assert v_before[0] > 2.0
    for i in range(8, 8 + 3):
        tracks = tr.boxes(frame)
        a_pose = shape + [50.0 + step * i, 0.0]
        crop_x = b.crop_box[0]
        shown = tr.update(tracks, np.stack([a_pose, a_pose]), np.full((2, k), 0.9), (640, 240))
        assert [t.id for t in shown] == [a_id], "B is not shown with A's pose"
        assert np.allclose(b.velocity, v_before), "A's pose must not teach B a motion"
        assert b.box[0] == pytest.approx(crop_x + v_before[0]), "B walks on at its own pace"
        assert b.misses == i - 7
    tracks = tr.boxes(frame)
    a_pose = shape + [50.0 + step * 11, 0.0]
    tr.update(tracks, np.stack([a_pose, a_pose]), np.full((2, k), 0.9), (640, 240))
    assert [t.id for t in tr.tracks] == [a_id], "after max_coast displaced frames B ends"
    assert any(t.id == b_id for _, t in tr._ended), "B's id is kept for a revival"
