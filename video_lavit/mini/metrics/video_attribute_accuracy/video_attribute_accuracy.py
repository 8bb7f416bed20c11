# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Colour / shape / direction accuracy of descriptions of the miniature Video-LaVIT's synthetic videos."""

import datasets
import evaluate

COLOURS = ("red", "green", "blue", "yellow", "white")
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")

_DESCRIPTION = """
Each prediction is a free-text description (a model's answer, or the attributes a pixel judge read from a generated
video, e.g. "red circle left"); each reference is the true description ("a red circle moves left"). An attribute is
right when the prediction names exactly one value of that attribute and it is the reference's value (naming two
colours counts as wrong). `accuracy` is the fraction of predictions with all three attributes right.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): descriptions to score.
    references (`list[str]`): true descriptions (each names one colour, one shape and one direction).
Returns:
    accuracy (`float`): all three attributes right; colour_accuracy, shape_accuracy, direction_accuracy (`float`).
Examples:
    >>> metric = evaluate.load("video_lavit/mini/metrics/video_attribute_accuracy")
    >>> metric.compute(predictions=["the red circle moves left"], references=["a red circle moves left"])["accuracy"]
    1.0
"""


def named(text, values):
    words = text.lower().replace(",", " ").replace(".", " ").split()
    found = [v for v in values if v in words]
    return found[0] if len(found) == 1 else None


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class VideoAttributeAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        if not references:
            raise ValueError("nothing to score: predictions and references are empty")
        hits = {"colour": 0, "shape": 0, "direction": 0, "all": 0}
        for prediction, reference in zip(predictions, references):
            right = []
            for name, values in (("colour", COLOURS), ("shape", SHAPES), ("direction", DIRECTIONS)):
                truth = named(reference, values)
                if truth is None:
                    raise ValueError(f"reference {reference!r} must name exactly one {name} of {values}")
                ok = named(prediction, values) == truth
                hits[name] += ok
                right.append(ok)
            hits["all"] += all(right)
        n = len(references)
        return {
            "accuracy": hits["all"] / n,
            "colour_accuracy": hits["colour"] / n,
            "shape_accuracy": hits["shape"] / n,
            "direction_accuracy": hits["direction"] / n,
        }
