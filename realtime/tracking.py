"""Person boxes for the next frame: from the last pose, or from the whole frame / a detector.

Single person (default): the box around the previous frame's confident keypoints
(score >= ``conf``, at least ``min_joints`` of them), grown by ``expand`` and clipped to the
frame. When too few joints are confident, tracking is *lost*: the person detector (the
bundled NanoDet, :class:`PersonDetector`) re-acquires the most confident person, or, when
it finds nobody (or none is used), the next crop is the whole frame
(:func:`edgepose.coords.whole_image_box`, the rule ``predict`` uses for an image without
boxes).

Multi person (``--multi``): the detector proposes boxes every ``detect_every`` frames and
whenever there is no track; in between, every track follows its own keypoint box, and each
track keeps its own One Euro filter. What keeps identities (measured on OpenCV's vtest.avi,
benchmarks/tracking.py): detections are matched to tracks best overlap first, over all
pairs, and a detection that mostly lies on a tracked person starts no second track; the
next crop is moved on by the person's running velocity (``velocity_smooth``: ground-truth
clip IDF1 0.57 -> 0.74); when a track's crop returns a person another track holds (the
model locked onto a neighbour walking beside them), that pose teaches it no motion: it walks
on at its own pace and ends after ``max_coast`` such frames (IDF1 0.74 -> 0.78, identity
switches over six clip variants 57 -> 29); each person's crop hides the other tracked
people outside its own box (``mask_others``, :func:`edgepose.topdown.crop_people`), so the
model cannot lock onto the neighbour in the first place (IDF1 0.78 -> 0.91, switches over
the variants 29 -> 15, vtest 45 -> 31 track ids); a track whose joints are weak for a frame or two
coasts along its motion (``max_coast`` frames) instead of ending; a newcomer is held back
-- no id, not shown -- until it has had a pose ``min_hits`` frames (default 2: hides
one-frame detections at the cost of a frame's delay; the scene's first people are shown at
once, so live equals ``predict`` on the first frame); a track whose person score stays low
(a sign post, a painting) is dropped; when the cap is full, a confident new person
replaces the weakest track.

One policy per kind of box (:mod:`edgepose.topdown`): a detection is cropped with the
detector file's own ``crop_padding`` and its score becomes the track's ``box_score`` (person
score = box score x joint score, as in ``predict --multi``); a box that follows keypoints
uses ``TrackOptions.padding``. A track's ``crop_box`` / ``crop_padding`` are what this
frame was cropped from; ``box`` / ``padding`` what the next frame will use.

Boxes are COCO-style xywh in frame pixels (x, y = top-left pixel *edge*).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from edgepose.coords import CROP_PADDING, whole_image_box
from edgepose.realtime.boxes import iou, limit_shrink, moved, near, overlap_of_smaller, same_box
from edgepose.realtime.smoothing import OneEuroFilter, SmoothOptions


@dataclass
class TrackOptions:
    """``conf``: keypoint score threshold; ``expand``: growth of the keypoint box (x);
    ``padding``: the crop padding handed to preprocessing for tracked boxes."""

    conf: float = 0.3
    min_joints: int = 4
    expand: float = 1.25
    padding: float = CROP_PADDING
    # A tracked box may shrink to at most this fraction of the previous one per frame, so
    # a few joints missing for a frame (legs out of the crop, low scores) cannot collapse
    # the crop onto part of the body.
    max_shrink: float = 0.85
    multi: bool = False
    detect_every: int = 10
    max_people: int = 8
    # single person: re-acquire a lost person with the detector instead of the whole frame
    reacquire: bool = True
    match_iou: float = 0.3
    # --multi: a person whose track ended (too few confident joints) keeps their id this
    # many frames; a detection where they were last seen picks it up again instead of
    # minting a new id (a one-frame miss -- a turn, an occlusion -- is not a new person)
    keep_lost: int = 30
    detector: str | None = None  # detector file (.onnx / .engine); None = the bundled ONNX
    # --multi: frames a track keeps its last box while its joints are too weak to follow
    max_coast: int = 5
    # --multi: an established track follows joints down to this score (ByteTrack's second
    # association: low-confidence evidence keeps an existing track, never starts one).
    # Measured (benchmarks/results/tracking): before a neighbour's pose stopped corrupting a
    # track's motion, 0.15 drifted onto neighbours (ground-truth clip IDF1 0.47); now 0.25
    # gives vtest 4 % short-lived ids at clip IDF1 0.78 (0.3: 11 %, 0.78; 0.2: 2 %, 0.79 but
    # variants' mean IDF1 0.70 vs 0.71).
    keep_conf: float = 0.25
    # --multi: each person's crop hides the other tracked people's boxes outside its own
    # (topdown.crop_people), as predict --multi does for detector boxes, so a neighbour in
    # a padded square crop cannot pull the pose onto itself. Measured
    # (benchmarks/results/tracking): ground-truth clip IDF1 0.78 -> 0.91, switches 2 -> 0,
    # variants' mean IDF1 0.71 -> 0.82; vtest 45 -> 31 ids.
    mask_others: bool = True
    # --multi: frames with a pose before a new track gets an id and is shown; the scene's
    # first people (nobody tracked yet) are shown at once, as ``predict`` shows them.
    # Measured (benchmarks/results/tracking): 1 -> vtest 53 ids, 19 % living <= 5 frames;
    # 2 -> 44 ids, 11 % (keep_conf 0.3), at the cost of one frame's delay for a newcomer
    min_hits: int = 2
    # --multi: a track whose person score (mean joint score, running average) stays below
    # this is not a person (a sign post, a picture): dropped
    min_quality: float = 0.2
    # --multi: constant-velocity motion (SORT / OC-SORT's Kalman state, reduced to an
    # averaged centre velocity): a followed box moves on by the person's recent motion
    # before the next frame is cropped, and a coasting or displaced track keeps walking
    # instead of waiting where it was last seen. ``velocity_smooth``: weight of the newest
    # step in the running velocity; 0 turns motion off.
    velocity_smooth: float = 0.1
    # a velocity is capped at this fraction of the box height per frame
    max_speed: float = 0.25


@dataclass
class Track:
    """One person: the box to crop next, and the smoother of their keypoints."""

    box: np.ndarray
    padding: float
    smoother: OneEuroFilter
    id: int = 0
    box_score: float | None = None  # the score of the detection that last placed it
    crop_box: np.ndarray | None = field(default=None, repr=False)  # this frame's crop
    crop_padding: float = 0.0
    keypoints: np.ndarray | None = field(default=None, repr=False)  # smoothed (stage 7)
    scores: np.ndarray | None = field(default=None, repr=False)
    raw: np.ndarray | None = field(default=None, repr=False)  # this frame's model output
    fresh: bool = True  # box came from the whole frame / a detection, not from keypoints
    smooth: bool = False  # this frame's pose continues the track (else it restarts)
    streak: int = 0  # frames in a row with a pose (who stays when two tracks converge)
    misses: int = 0  # frames in a row without a confident pose (--multi: coasting)
    hits: int = 0  # frames with a pose since the track started
    quality: float = 0.5  # running average of the mean joint score
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2), repr=False)  # px/frame
    last_centre: np.ndarray | None = field(default=None, repr=False)  # of the keypoint box
    # before this frame's pose was taken (restored if :meth:`PersonTracker._resolve` finds
    # the pose was a neighbour's, so a wrong pose teaches neither motion nor a miss count)
    before: tuple | None = field(default=None, repr=False)
    # frames with a pose before it gets an id: TrackOptions.min_hits, 1 for the scene's first
    # people (set when the detection starts the track)
    min_hits: int = 1


def keypoint_box(
    coords: np.ndarray, scores: np.ndarray, frame_wh: tuple[int, int], opts: TrackOptions
) -> np.ndarray | None:
    """(K, 2) px + (K,) scores -> expanded, clipped xywh box; None if too few confident."""
    ok = scores >= opts.conf
    if int(ok.sum()) < max(opts.min_joints, 2):
        return None
    pts = coords[ok]
    lo, hi = pts.min(axis=0) - 0.5, pts.max(axis=0) + 0.5  # pixel centres -> edges
    centre = (lo + hi) / 2.0
    size = np.maximum(hi - lo, 8.0) * opts.expand
    w, h = frame_wh
    x0, y0 = np.clip(centre - size / 2.0, 0.0, [w, h])
    x1, y1 = np.clip(centre + size / 2.0, 0.0, [w, h])
    if x1 - x0 < 4.0 or y1 - y0 < 4.0:
        return None
    return np.array([x0, y0, x1 - x0, y1 - y0])


class PersonDetector:
    """Person boxes from :class:`edgepose.engines.detector.Detector` (the bundled NanoDet
    ONNX unless ``path`` is given), at most ``max_people``: a call returns a
    :class:`edgepose.topdown.PersonBoxes` (best first, the file's ``crop_padding``, scores)."""

    def __init__(self, max_people: int = 8, path=None, threads: int | None = None):
        from edgepose.engines.detector import Detector

        self.detector = Detector(path, threads=threads, max_people=max_people)
        self.crop_padding = self.detector.crop_padding
        self.calls = 0

    def __call__(self, image_bgr: np.ndarray):
        from edgepose.topdown import PersonBoxes

        self.calls += 1
        return PersonBoxes.detected(self.detector, image_bgr)


class PersonTracker:
    """Keeps the person tracks between frames and says where to crop next.

    ``boxes(frame)`` -> list of tracks to run this frame; after inference, ``update(tracks,
    coords, scores)`` stores each track's (K, 2) frame-pixel keypoints and moves its box.
    """

    def __init__(
        self,
        opts: TrackOptions | None = None,
        smooth: SmoothOptions | None = None,
        detector=None,
    ):
        self.opts = opts or TrackOptions()
        self.smooth = smooth or SmoothOptions()
        self.detector = detector
        if self.detector is None and (self.opts.multi or self.opts.reacquire):
            self.detector = PersonDetector(self.opts.max_people, self.opts.detector)
        self.tracks: list[Track] = []
        self.lost = 0  # times tracking was lost (single person) / tracks ended (multi)
        self.revived = 0  # --multi: ended tracks picked up again under their own id
        self._frames = 0
        self._ended: list[tuple[int, Track]] = []  # (frame it ended, track), --multi
        self._next_id = 0

    def _new_track(self, box: np.ndarray, padding: float) -> Track:
        """A track gets its id (``id`` 0 until then) once its first pose survives
        :meth:`update`: a detection that turns out to be a tracked person again (merged
        by :func:`_dedupe`) or nobody (too few confident joints) never takes a number."""
        return Track(box, padding, OneEuroFilter(self.smooth), id=0)

    def boxes(self, image_bgr: np.ndarray) -> list[Track]:
        """The tracks to run on this frame, each with its ``crop_box`` / ``crop_padding``."""
        h, w = image_bgr.shape[:2]
        if not self.opts.multi:
            if not self.tracks:
                self.tracks = [self._new_track(*whole_image_box(w, h))]
            tr = self.tracks[0]
            if tr.fresh and self.detector is not None:  # lost: look for the person
                found = self._detect(image_bgr)
                if len(found):
                    tr.box, tr.padding = found.boxes[0], found.paddings[0]
                    tr.box_score = found.scores[0] if found.scores else None
                else:
                    (tr.box, tr.padding), tr.box_score = whole_image_box(w, h), None
        else:
            if self._frames % max(self.opts.detect_every, 1) == 0 or not self.tracks:
                self._merge_detections(self._detect(image_bgr))
            self._frames += 1
        for tr in self.tracks:
            tr.crop_box, tr.crop_padding = tr.box.copy(), float(tr.padding)
        return self.tracks

    def _detect(self, image_bgr: np.ndarray):
        """The detector's people as :class:`edgepose.topdown.PersonBoxes` (a detector that
        returns plain boxes -- a script, a test -- gets the tracked-box padding, no scores)."""
        from edgepose.topdown import PersonBoxes

        found = self.detector(image_bgr)
        if isinstance(found, PersonBoxes):
            return found
        return PersonBoxes.given(list(found), self.opts.padding)

    def _merge_detections(self, found) -> None:
        dets = list(found.boxes)
        scores = list(found.scores) if found.scores is not None else [None] * len(dets)
        pairs = sorted(((iou(tr.box, d) + overlap_of_smaller(tr.box, d), i, j)
                        for i, tr in enumerate(self.tracks) for j, d in enumerate(dets)),
                       reverse=True)
        used_t, used_d = set(), set()
        for _, i, j in pairs:  # best overlap first, over all pairs (not track order)
            if i in used_t or j in used_d or not self._same_person(self.tracks[i].box, dets[j]):
                continue
            used_t.add(i)
            used_d.add(j)
            tr = self.tracks[i]
            tr.box_score = scores[j]  # keep the track's own (keypoint) box
            if tr.misses:  # coasting: the detector found them again
                tr.box, tr.padding = dets[j], found.paddings[j]
        # a detection mostly on a tracked person is that person, not a second track
        unmatched = [j for j in range(len(dets)) if j not in used_d and
                     all(overlap_of_smaller(tr.box, dets[j]) < 0.5 for tr in self.tracks)]
        self._ended = [(f, t) for f, t in self._ended
                       if self._frames - f <= self.opts.keep_lost]
        # the scene's first people (nobody tracked yet) are shown at once, as predict shows them
        opening = not self.tracks and self._next_id == 0
        for j in unmatched:  # best detection first
            if len(self.tracks) >= self.opts.max_people and not self._make_room(scores[j]):
                break
            tr = self._revive(dets[j], found.paddings[j]) or \
                self._new_track(dets[j], found.paddings[j])
            tr.min_hits = 1 if opening else self.opts.min_hits
            tr.box_score = scores[j]
            self.tracks.append(tr)

    def _make_room(self, det_score: float | None) -> bool:
        """The cap is full: drop the weakest track (lowest running person score) for a new
        detection that is more confident than it; False when none is weaker."""
        weakest = min(self.tracks, key=lambda t: t.quality)
        if det_score is None or weakest.quality >= float(det_score):
            return False
        self.tracks = [t for t in self.tracks if t is not weakest]
        if weakest.id:
            self._ended.append((self._frames, weakest))
        return True

    def _same_person(self, track_box: np.ndarray, det: np.ndarray) -> bool:
        """Does a detection match a track's box? A keypoint box and a detector box of the
        same person often differ in size (IoU below ``match_iou``) while one mostly
        contains the other."""
        return iou(track_box, det) >= self.opts.match_iou or \
            overlap_of_smaller(track_box, det) >= 0.6

    def _revive(self, det: np.ndarray, padding: float) -> Track | None:
        """The most recently ended track whose last box this detection matches
        (:meth:`_same_person`, or its centre within half a box of that box's centre at a
        similar size: a small, distant person walks out of IoU range in a few frames),
        restarted on the detection; None if there is none."""
        for k in range(len(self._ended) - 1, -1, -1):
            tr = self._ended[k][1]
            if self._same_person(tr.box, det) or near(tr.box, det):
                del self._ended[k]
                tr.box, tr.padding, tr.fresh, tr.smooth = det, padding, True, False
                tr.streak = tr.misses = 0
                tr.velocity, tr.last_centre = np.zeros(2), None  # stale after a gap
                tr.smoother.reset()
                self.revived += 1
                return tr
        return None

    def update(
        self, tracks: list[Track], coords: np.ndarray, scores: np.ndarray,
        frame_wh: tuple[int, int],
    ) -> list[Track]:
        """Store each track's (K, 2) frame-pixel pose as ``raw`` and set its next box.

        ``coords`` (N, K, 2), ``scores`` (N, K) for the N tracks given. Returns the tracks
        with a pose this frame; smoothing is the next stage
        (:func:`edgepose.realtime.smoothing.smooth_tracks`), which reads ``smooth``.
        """
        if self.opts.multi:
            return self._update_multi(tracks, coords, scores, frame_wh)
        kept: list[Track] = []
        for tr, c, s in zip(tracks, coords, scores):
            box = keypoint_box(c, s, frame_wh, self.opts)
            tr.raw, tr.keypoints, tr.scores = c, c, s
            if box is None:
                tr.smoother.reset()
                tr.smooth = False
                if not tr.fresh:
                    self.lost += 1
                w, h = frame_wh
                (tr.box, tr.padding), tr.fresh = whole_image_box(w, h), True
                tr.box_score = None
                kept.append(tr)
                continue
            tr.smooth = True
            if not tr.fresh:
                box = limit_shrink(tr.box, box, self.opts.max_shrink, frame_wh)
            tr.box, tr.padding, tr.fresh = box, self.opts.padding, False
            kept.append(tr)
        for tr in kept:
            if tr.id == 0:
                self._next_id += 1
                tr.id = self._next_id
        return kept

    def _update_multi(self, tracks, coords, scores, frame_wh) -> list[Track]:
        """--multi: see the module docstring. Returns the tracks shown this frame (a pose,
        past the tentative frames); coasting and tentative tracks stay in ``self.tracks``."""
        o = self.opts
        alive: list[Track] = []
        keep = dataclasses.replace(o, conf=min(o.conf, o.keep_conf))
        for tr, c, s in zip(tracks, coords, scores):
            box = keypoint_box(c, s, frame_wh, keep if tr.hits >= tr.min_hits else o)
            tr.raw, tr.keypoints, tr.scores = c, c, s
            if box is None:
                tr.misses += 1
                tr.streak = 0
                tr.smoother.reset()
                tr.smooth = False
                if tr.misses <= o.max_coast and tr.hits:
                    tr.box = moved(tr.box, tr.velocity, frame_wh)  # coast along its motion
                    tr.last_centre = None
                    alive.append(tr)
                    continue
                self.lost += 1
                if tr.id:  # the detector may find them again
                    self._ended.append((self._frames, tr))
                continue
            tr.quality = float(np.mean(s)) if tr.hits == 0 else \
                0.8 * tr.quality + 0.2 * float(np.mean(s))
            tr.hits += 1
            if tr.hits >= 3 * tr.min_hits and tr.quality < o.min_quality:
                continue  # joints never strong: not a person
            tr.before = (tr.velocity.copy(), tr.last_centre, tr.misses)
            tr.smooth = tr.misses == 0 and not tr.fresh
            self._update_velocity(tr, box)
            tr.misses = 0
            if not tr.fresh:
                box = limit_shrink(tr.box, box, o.max_shrink, frame_wh)
            box = moved(box, tr.velocity, frame_wh)  # where they will be next frame
            tr.box, tr.padding, tr.fresh = box, o.padding, False
            tr.streak += 1
            alive.append(tr)
        self.tracks = self._resolve(alive, frame_wh)
        shown = []
        for tr in self.tracks:
            if tr.misses or (tr.hits < tr.min_hits and not tr.id):
                continue
            if tr.id == 0:
                self._next_id += 1
                tr.id = self._next_id
            shown.append(tr)
        return shown

    def _update_velocity(self, tr: Track, box: np.ndarray) -> None:
        """Running centre velocity from two consecutive keypoint boxes of the track."""
        o = self.opts
        centre = box[:2] + box[2:] / 2.0
        if o.velocity_smooth > 0 and tr.last_centre is not None and tr.misses == 0 \
                and not tr.fresh:
            step = centre - tr.last_centre
            v = (1 - o.velocity_smooth) * tr.velocity + o.velocity_smooth * step
            cap = o.max_speed * box[3]
            speed = float(np.hypot(*v))
            tr.velocity = v * (cap / speed) if speed > cap else v
        tr.last_centre = centre

    def _resolve(self, alive: list[Track], frame_wh: tuple[int, int]) -> list[Track]:
        """Two tracks whose boxes now cover one person (:func:`same_box`): the older track
        keeps it. The other -- typically a neighbour walking beside them, whose crop the
        model locked onto the more visible person -- keeps its id: back to its own last box,
        coasting (not shown) until the next detection re-anchors it; a tentative track
        (no id yet) is dropped."""
        kept: list[Track] = []
        for tr in sorted(alive, key=lambda t: (-t.hits, -t.streak)):
            if not any(same_box(tr.box, o.box) for o in kept):
                kept.append(tr)
                continue
            if tr.before is not None:  # the neighbour's pose taught this track nothing
                tr.velocity, tr.last_centre, tr.misses = tr.before
            if tr.id and tr.misses < self.opts.max_coast and tr.crop_box is not None:
                # back to the box this frame was cropped from (set by boxes()), moved on by
                # the track's own motion: a neighbour keeps walking beside the person
                back = moved(tr.crop_box, tr.velocity, frame_wh)
                tr.box, tr.misses, tr.streak, tr.smooth = back, tr.misses + 1, 0, False
                tr.last_centre = None
                tr.smoother.reset()
                kept.append(tr)
            elif tr.id:
                self._ended.append((self._frames, tr))
        return kept
