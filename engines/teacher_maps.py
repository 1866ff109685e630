"""Write a teacher-map store (:mod:`edgepose.data.teacher_maps`) for one COCO keypoint file.

MoveNet Thunder (the imported PyTorch port, :func:`edgepose.models.movenet_import.load_imported`)
runs once on every person's full-resolution crop (the box padded by ``CROP_PADDING``, 256 x 256)
and its sigmoid keypoint heatmaps (64 x 64 at stride 4) are kept as uint8. Training then warps
them into each augmented crop instead of running the teacher per sample (~70 ms a person on
one CPU thread against ~6 ms for a 64-px student's whole training step).

The write is resumable: rows are filled in order in ``maps.npy`` (a memory-mapped .npy) and
``progress.json`` records how many are done; the affines follow from the boxes alone and are
written at the end with ``info.json``, which makes the folder a store.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgepose.coords import CROP_PADDING, box_to_center_scale, compose_affine, crop_affine
from edgepose.data.teacher_maps import FORMAT, grid_affine
from edgepose.errors import DataError
from edgepose.fileio import atomic_write_bytes, check_output_dir, file_sha256

STRIDE = 4


def _person_rows(ann_file: Path, num_joints: int) -> list[dict]:
    from edgepose.data.coco import load_coco_samples

    samples, _ = load_coco_samples(ann_file, num_joints)
    if not samples:
        raise DataError(f"{ann_file}: no person with a labelled joint")
    return samples


def write_store(ann_file, image_root, out, teacher: str = "movenet_thunder", batch: int = 16,
                threads: int = 1, progress: bool = True, limit: int = 0) -> Path:
    """Run ``teacher`` on every person of ``ann_file`` (images under ``image_root``) and
    write the store folder ``out``; returns it. Resumes a write that was cut short."""
    import torch
    from tqdm import tqdm

    from edgepose.data.files import read_image
    from edgepose.models.movenet_import import load_imported
    from edgepose.preprocess import crop, normalize

    ann_file, image_root, out = Path(ann_file), Path(image_root), Path(out)
    samples = _person_rows(ann_file, 17)
    if limit:
        samples = samples[:limit]
    model, meta = load_imported(teacher)
    if threads:
        torch.set_num_threads(int(threads))
    w, h = meta.width, meta.height
    gh, gw = h // STRIDE, w // STRIDE
    n = len(samples)
    check_output_dir(out, "teacher-map folder")
    done_file = out / "progress.json"
    state = json.loads(done_file.read_text()) if done_file.is_file() else {}
    source = file_sha256(ann_file)
    resume = state.get("source") == source and state.get("n") == n \
        and (out / "maps.npy").is_file()
    if not resume:
        (out / "info.json").unlink(missing_ok=True)  # an old store is not one any more
    mode = "r+" if resume else "w+"
    maps = np.lib.format.open_memmap(out / "maps.npy", mode=mode, dtype=np.uint8,
                                     shape=(n, 17, gh, gw))
    start = int(state.get("done", 0)) if resume else 0
    to_grid = grid_affine(STRIDE)
    crops_at = [crop_affine(*box_to_center_scale(s["bbox"], w / h, CROP_PADDING), (w, h))
                for s in samples]  # image -> teacher input; from the boxes alone
    bar = tqdm(total=n, initial=start, desc=f"teacher maps {ann_file.name}", disable=not progress)
    for lo in range(start, n, batch):
        rows = samples[lo:lo + batch]
        crops = []
        for j, s in enumerate(rows):
            img = read_image(image_root / s["file_name"])
            crops.append(normalize(crop(img, crops_at[lo + j], (w, h)), meta))
        with torch.no_grad():
            feats = model.backbone(torch.from_numpy(np.stack(crops)))
            p = torch.sigmoid(model.head.maps(feats)["heatmap"]).numpy()
        maps[lo:lo + len(rows)] = np.round(p * 255.0).astype(np.uint8)
        maps.flush()
        done_file.write_text(json.dumps({"source": source, "n": n, "done": lo + len(rows)}))
        bar.update(len(rows))
    bar.close()
    del maps
    np.save(out / "affine.npy", np.stack([compose_affine(to_grid, m) for m in crops_at]))
    np.save(out / "ann_ids.npy", np.asarray([s["ann_id"] for s in samples], np.int64))
    info = {"format": FORMAT, "teacher": teacher, "input_size": [h, w], "stride": STRIDE,
            "crop_padding": CROP_PADDING, "source": str(ann_file), "source_sha256": source,
            "people": n}
    atomic_write_bytes(out / "info.json", lambda f: f.write(json.dumps(info, indent=1).encode()))
    done_file.unlink(missing_ok=True)
    return out
