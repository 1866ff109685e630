"""Joint sets: names, left/right flip pairs, limbs for drawing, OKS sigmas."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Skeleton:
    name: str
    joints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    limbs: tuple[tuple[int, int], ...]
    # Per-joint OKS sigmas (COCO); None where the set has no standard values.
    sigmas: tuple[float, ...] | None = field(default=None)

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def flip_permutation(self) -> list[int]:
        """Index permutation that swaps left and right joints."""
        perm = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


COCO_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

COCO = Skeleton(
    name="coco17",
    joints=COCO_JOINTS,
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12),
        (5, 6), (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2),
        (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    # From the COCO keypoint evaluation (cocoeval.py), per joint in the order above.
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
)

MPII_JOINTS = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)

MPII = Skeleton(
    name="mpii16",
    joints=MPII_JOINTS,
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    limbs=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO, MPII)}


def coco_person_category(sk: Skeleton = COCO) -> dict:
    """The COCO ``categories`` entry of a person with ``sk``'s keypoints and its limbs as
    COCO's 1-based skeleton (what every COCO keypoint file edgepose writes carries)."""
    return {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(sk.joints),
            "skeleton": [[a + 1, b + 1] for a, b in sk.limbs]}


def get_skeleton(name: str) -> Skeleton:
    from edgepose.errors import ModelError

    try:
        return SKELETONS[name]
    except KeyError:
        raise ModelError(
            f"unknown joint set {name!r}; choose one of {sorted(SKELETONS)}"
        ) from None
