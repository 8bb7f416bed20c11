# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Reconstruction error of a motion tokenizer: decoded motion vs the motion it encoded."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Predictions are decoded motion tensors, references the original ones (any shape, flattened per clip). Returns the
mean squared error, the relative squared error (sum of squared errors / sum of squared references, 0 = perfect,
1 = as bad as predicting zeros) and the cosine similarity of the mean motion direction per clip.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): decoded motion, one flattened clip per item.
    references (`list[list[float]]`): original motion, same lengths.
Returns:
    mse (`float`), relative_error (`float`), mean_direction_cosine (`float`, per clip: cosine of the mean (x, y)
    motion of prediction and reference, the first half of each item being x and the second half y).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MotionReconstructionError(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("float32")),
                "references": datasets.Sequence(datasets.Value("float32")),
            }),
        )

    def _compute(self, predictions, references):
        if len(predictions) != len(references) or not references:
            raise ValueError(f"need as many predictions as references (> 0), got {len(predictions)} and {len(references)}")
        squared, total, cosines, count = 0.0, 0.0, [], 0
        for p, r in zip(predictions, references):
            p, r = np.asarray(p, dtype=np.float64), np.asarray(r, dtype=np.float64)
            if p.shape != r.shape or p.size % 2:
                raise ValueError(f"prediction and reference must have one even length, got {p.shape} and {r.shape}")
            squared += float(((p - r) ** 2).sum())
            total += float((r**2).sum())
            count += r.size
            half = r.size // 2
            mp = np.array([p[:half].mean(), p[half:].mean()])
            mr = np.array([r[:half].mean(), r[half:].mean()])
            denom = np.linalg.norm(mp) * np.linalg.norm(mr)
            cosines.append(float(mp @ mr / denom) if denom > 0 else 0.0)
        return {
            "mse": squared / count,
            "relative_error": squared / total if total > 0 else float("inf"),
            "mean_direction_cosine": float(np.mean(cosines)),
        }
