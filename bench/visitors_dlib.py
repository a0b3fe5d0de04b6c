"""dlib's face descriptor on the visitors bench's faces, for comparison with the local analyser's.

dlib's ResNet descriptor (128-d; its weights ship in the ``face_recognition_models`` wheel on
PyPI) runs with ``dlib-bin``; neither is a vidsift dependency, so this runs in a venv of its
own on the faces ``python -m bench.bench_visitors --export FILE`` wrote (the same images and
yuface boxes the bench uses; dlib's 5-point model aligns them):

    python -m bench.bench_visitors --export /tmp/visitor-faces.pkl
    python3 -m venv /tmp/dlib && /tmp/dlib/bin/pip install dlib-bin face_recognition_models
    /tmp/dlib/bin/python bench/visitors_dlib.py /tmp/visitor-faces.pkl
"""

from __future__ import annotations

import itertools
import pickle
import sys

import dlib  # type: ignore[import-not-found]
import face_recognition_models as models  # type: ignore[import-not-found]
import numpy as np


def main(path: str) -> None:
    shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    net = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    with open(path, "rb") as f:
        faces = pickle.load(f)  # our own file, written by bench_visitors --export
    found: dict[str, list[np.ndarray]] = {}
    for group, items in faces.items():
        found[group] = []
        for bgr, (x, y, w, h) in items:
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            shape = shapes(rgb, dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))
            found[group].append(np.array(net.compute_face_descriptor(rgb, shape, 1)))
    man, others = found["man"], found["lfw"] + found["bundled"]
    same = np.array([np.linalg.norm(a - b) for a, b in itertools.combinations(man, 2)])
    diff = np.array([np.linalg.norm(a - b) for a, b in itertools.combinations(others, 2)]
                    + [np.linalg.norm(a - b) for a in man for b in others])
    print(f"dlib descriptors: the man {len(man)}, different faces {len(others)}; "
          f"{len(same)} same-man pairs, {len(diff)} different-face pairs")
    for t in (0.45, 0.5, 0.55, 0.6):
        print(f"  distance < {t:.2f}: same man matched {100 * np.mean(same < t):5.1f}% one-to-one, "
              f"different faces matched {100 * np.mean(diff < t):5.2f}%")


if __name__ == "__main__":
    main(sys.argv[1])
