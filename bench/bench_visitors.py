"""Visitors: does the same person get the same visitor id, and do different people never share one?

The visitor decision of the pipeline (vidsift.core.visitors: decide, faces_to_index) is
replayed over the local analyser's real face descriptors (Human's faceres, what the local
Rekognition's SearchFacesByImage compares, with its cosine -> Similarity mapping), visit by
visit, as analyze_faces makes it: search the visit's face in the collection, a match at or
above the threshold is that visitor, else a new visitor is indexed; a matched visitor gets
the visit's face indexed too until it holds ``faces per visitor`` faces.

Faces, all from installed packages (nothing downloaded):

* one man, 18 photos from different occasions (the thumbnails of the face-match screenshot
  in @vladmandic/human's npm package): the same person coming back 18 times;
* scikit-image's ``lfw_subset`` (100 face crops of Labeled Faces in the Wild) and the three
  bundled portraits (astronaut, Grace Hopper, the cameraman): different people.

Printed: the true-match rate (visits of the man that get his first id) by faces per visitor
and threshold, over 200 random orders of his visits; the false-match rate (a different
person's visit given an existing visitor's id) over the 100+ different faces, in order;
the threshold is chosen on the first half of the LFW faces and the rate reported on the
other half (not tuned on).

    python -m bench visitors        (or: python -m bench.bench_visitors)
"""

from __future__ import annotations

import random
from typing import Any

import cv2
import numpy as np

from bench.bench_alerts import HUMAN_ASSETS, PEOPLE, _bgr, lfw_descriptors, lfw_images

THRESHOLDS = (80.0, 85.0, 88.0, 90.0, 92.0, 95.0)
FACES_PER_VISITOR = (1, 2, 3, 5, 8)
ORDERS = 200


def descriptors() -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], dict[str, list[np.ndarray]]]:
    """(the man's 18 photos, the LFW faces, the three bundled portraits, and each portrait's
    altered copies: what one visitor looks like to other cameras and videos): unit descriptors."""
    from bench.bench_alerts import variants
    from vidsift.local import face_analyzer as fa

    analyzer = fa.FaceAnalyzer(attributes=True)
    if not analyzer.has_attributes:
        raise SystemExit(f"face descriptor model unavailable: {analyzer.attributes_error}")
    try:
        shot = cv2.imread(str(HUMAN_ASSETS / "screenshot-facematch.jpg"))
        man = [d for _, d in analyzer.analyze_with_descriptors(shot[283:395]) if d is not None]
        lfw = lfw_descriptors(analyzer)
        bundled = []
        for name in PEOPLE:
            found = analyzer.analyze_with_descriptors(_bgr(name))
            if found and found[0][1] is not None:
                bundled.append(found[0][1])
        copies: dict[str, list[np.ndarray]] = {}
        for name in PEOPLE:
            for img in variants(name).values():
                found = analyzer.analyze_with_descriptors(img)
                if found and found[0][1] is not None:
                    copies.setdefault(name, []).append(found[0][1])
    finally:
        analyzer.close()
    return man, lfw, bundled, copies


class Collection:
    """The visitors collection as the local Rekognition keeps it: descriptors with their
    ExternalImageId, searched by cosine mapped to Similarity."""

    def __init__(self) -> None:
        self.faces: list[tuple[np.ndarray, str]] = []

    def search(self, d: np.ndarray, threshold: float) -> list[Any]:
        from vidsift.core import visitors as rules
        from vidsift.local.rekognition import similarity

        out = []
        for desc, external in self.faces:
            sim = similarity(float(desc @ d))
            if sim >= threshold:
                vid, ref = rules.parse_external_image_id(external)  # type: ignore[misc]
                out.append(rules.SearchHit(vid, ref, sim))
        return out


def assign(visits: list[np.ndarray], threshold: float, per_visitor: int) -> list[str]:
    """The visitor id each visit gets, in order, by the pipeline's own decision rules."""
    from vidsift.core import visitors as rules

    col, counts, ids = Collection(), {}, []
    for i, d in enumerate(visits):
        face = {"record_id": f"r{i}", "video_id": f"video{i}", "frame_index": 0, "face_index": 0,
                "bbox_width": 0.2, "bbox_height": 0.2, "sharpness": 50, "pose_yaw": 0}
        ref = rules.face_ref(f"video{i}", 0, 0)
        decision = rules.decide(col.search(d, threshold), [ref], threshold)
        vid = decision.visitor_id or rules.visitor_id(len(counts) + 1)
        counts.setdefault(vid, 0)
        for _ in rules.faces_to_index([face], counts[vid], per_visitor, decision.indexed_refs):
            col.faces.append((d, rules.external_image_id(vid, ref)))
            counts[vid] += 1
        ids.append(vid)
    return ids


def true_match(man: list[np.ndarray], threshold: float, per_visitor: int, orders: int = ORDERS) -> tuple[float, float]:
    """(share of his return visits given his first visit's id, mean ids he was split into)."""
    rng = random.Random(0)
    same, splits = [], []
    for _ in range(orders):
        order = man[:]
        rng.shuffle(order)
        ids = assign(order, threshold, per_visitor)
        same.append(np.mean([v == ids[0] for v in ids[1:]]))
        splits.append(len(set(ids)))
    return float(np.mean(same)), float(np.mean(splits))


def false_match(people: list[np.ndarray], threshold: float) -> tuple[int, int]:
    """(visits of different people given an existing visitor's id, visits)."""
    ids = assign(people, threshold, 5)
    return len(ids) - len(set(ids)), len(ids)


def export(path: str) -> None:
    """The bench's faces (images and yuface boxes) for bench/visitors_dlib.py."""
    import pickle

    from vidsift.local import face_analyzer as fa

    analyzer = fa.FaceAnalyzer(attributes=False)
    shot = cv2.imread(str(HUMAN_ASSETS / "screenshot-facematch.jpg"))[283:395]
    out: dict[str, list[Any]] = {"man": [(shot, box) for _, box, _ in analyzer.detect(shot)], "lfw": [],
                                 "bundled": []}
    for g in lfw_images():
        if found := analyzer.detect(g):
            out["lfw"].append((g, found[0][1]))
    for name in PEOPLE:
        if found := analyzer.detect(_bgr(name)):
            out["bundled"].append((_bgr(name), found[0][1]))
    with open(path, "wb") as f:
        pickle.dump(out, f)
    print(f"wrote {path}: " + ", ".join(f"{k} {len(v)}" for k, v in out.items()))


def main(argv: list[str] | None = None) -> None:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--export"]:
        export(args[1])
        return
    from vidsift.local.rekognition import MATCH_COSINE, similarity

    man, lfw, bundled, copies = descriptors()
    print(f"faces with a descriptor: the man {len(man)} of 18 photos, lfw_subset {len(lfw)} of 100, "
          f"bundled portraits {len(bundled)} of 3; local Similarity 90 = cosine {MATCH_COSINE}")
    half = len(lfw) // 2
    tune, held = lfw[:half], lfw[half:] + bundled
    print("\nfalse matches (different people given an existing visitor's id), in visit order:")
    print("  threshold | tuning half (lfw 1st half + the man once) | held out (lfw 2nd half + portraits) | all")
    chosen = None
    for t in THRESHOLDS:
        a = false_match(tune + man[:1], t)
        b = false_match(held, t)
        c = false_match(lfw + bundled + man[:1], t)
        if chosen is None and a[0] == 0:
            chosen = t
        print(f"  {t:9.0f} | {a[0]:3d} of {a[1]:3d} ({100 * a[0] / a[1]:5.2f}%)"
              f"{'':22}| {b[0]:3d} of {b[1]:3d} ({100 * b[0] / b[1]:5.2f}%){'':16}"
              f"| {c[0]:3d} of {c[1]:3d} ({100 * c[0] / c[1]:5.2f}%)")
    print(f"lowest threshold without a false match on the tuning half: {chosen}")
    print("\ntrue matches: the man's 18 visits in 200 random orders; share of his return visits given his "
          "first id (mean number of ids he was split into)")
    print("  faces per visitor | " + " | ".join(f"thr {t:.0f}" for t in THRESHOLDS))
    for k in FACES_PER_VISITOR:
        cells = [true_match(man, t, k) for t in THRESHOLDS]
        print(f"  {k:17d} | " + " | ".join(f"{100 * s:5.1f}% ({n:4.1f})" for s, n in cells))
    print("\nthe same three people through other cameras and videos (11 altered copies each: mirrored, half "
          "size, noisy, darker, brighter, rotated, blurred, grey, JPEG q30, in a larger frame), 5 faces per "
          "visitor, 200 orders: share of return visits given the first id (mean ids)")
    for t in THRESHOLDS:
        cells = [true_match(copies[name], t, 5) for name in PEOPLE if name in copies]
        print(f"  threshold {t:4.0f}: " + ", ".join(f"{name} {100 * s:5.1f}% ({n:3.1f})"
                                                   for name, (s, n) in zip(PEOPLE, cells, strict=True)))
    one = [similarity(float(a @ b)) for i, a in enumerate(man) for b in man[i + 1:]]
    print(f"\none photo against one other (one face per visitor, no growth): "
          f"{100 * np.mean(np.asarray(one) >= 90):.1f}% of {len(one)} pairs at Similarity >= 90")


if __name__ == "__main__":
    main()
