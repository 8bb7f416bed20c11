# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Video question-answering accuracy without a judge model: normalised exact match and normalised "contains" match.

This file is a self-contained `evaluate` module (evaluate copies it into its module cache on `evaluate.load`, so it
imports nothing from `video_lavit`). Load it by path, offline:

    import evaluate, video_lavit.metrics
    metric = evaluate.load(video_lavit.metrics.VIDEO_QA_ACCURACY)
"""

import re
import string
import unicodedata

import datasets
import evaluate

_DESCRIPTION = """\
Accuracy of free-form answers to video questions (MSVD-QA, MSRVTT-QA, ActivityNet-QA style), computed without a
language-model judge. Prediction and reference are normalised (Unicode NFKC, lower case, punctuation removed, the
articles "a", "an", "the" dropped, whitespace collapsed). A prediction is correct under

* `exact`: the normalised prediction equals a normalised reference;
* `contains`: a normalised reference occurs in the normalised prediction as a run of whole words
  ("a brown dog runs" contains "dog" but not "do").

Each example may list several acceptable references (any match counts). Video-LaVIT's paper reports the
GPT-3.5-assisted accuracy of the Video-ChatGPT protocol; this metric is a deterministic, offline proxy for it and its
values are not comparable with the paper's numbers.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): the model's answers.
    references (`list` of `str`, or `list` of `list` of `str`): one reference answer, or several acceptable ones, per
        prediction.
    match (`str`, defaults to `"contains"`): which rule gives `accuracy`: `"contains"` or `"exact"`.

Returns:
    accuracy (`float`): fraction of correct predictions under `match`, in [0, 1].
    exact_match (`float`): fraction correct under the exact rule.
    contains_match (`float`): fraction correct under the contains rule.
    num_examples (`int`): number of scored examples.

Examples:
    >>> metric = evaluate.load("video_lavit/metrics/video_qa_accuracy")
    >>> metric.compute(predictions=["A dog.", "it is raining"], references=["dog", "sunny"])
    {'accuracy': 0.5, 'exact_match': 0.5, 'contains_match': 0.5, 'num_examples': 2}
"""

_CITATION = """\
@inproceedings{maaz2024videochatgpt,
  title={Video-ChatGPT: Towards Detailed Video Understanding via Large Vision and Language Models},
  author={Maaz, Muhammad and Rasheed, Hanoona and Khan, Salman and Khan, Fahad Shahbaz},
  booktitle={Proceedings of the 62nd Annual Meeting of the Association for Computational Linguistics},
  year={2024}
}
"""

MATCH_RULES = ("contains", "exact")
_ARTICLES = frozenset({"a", "an", "the"})


def normalize_answer(text: str) -> list[str]:
    """The words of `text` after NFKC, lower-casing, punctuation removal and article removal."""
    if not isinstance(text, str):
        raise TypeError(f"answers must be strings, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text).lower()
    # Unicode punctuation (category P*) as well as ASCII symbols become word breaks, so "dog." and "dog" agree
    text = "".join(" " if unicodedata.category(c).startswith("P") or c in string.punctuation else c for c in text)
    return [word for word in re.split(r"\s+", text) if word and word not in _ARTICLES]


def _contains(words: list[str], reference: list[str]) -> bool:
    n = len(reference)
    return any(words[i : i + n] == reference for i in range(len(words) - n + 1))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class VideoQaAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions, references, match: str = "contains"):
        if match not in MATCH_RULES:
            raise ValueError(f"match must be one of {MATCH_RULES}, got {match!r}")
        if not predictions:
            raise ValueError("no predictions to score")
        exact = contains = 0
        for index, (prediction, refs) in enumerate(zip(predictions, references)):
            refs = [refs] if isinstance(refs, str) else list(refs)
            if not refs:
                raise ValueError(f"example {index} has no reference answer")
            normalized_refs = [normalize_answer(ref) for ref in refs]
            if any(not ref for ref in normalized_refs):
                # an empty reference would be "contained" in every prediction
                raise ValueError(f"example {index}: reference {refs!r} is empty after normalisation")
            words = normalize_answer(prediction)
            exact += any(words == ref for ref in normalized_refs)
            contains += any(_contains(words, ref) for ref in normalized_refs)
        total = len(predictions)
        scores = {"exact": exact / total, "contains": contains / total}
        return {
            "accuracy": scores[match],
            "exact_match": scores["exact"],
            "contains_match": scores["contains"],
            "num_examples": total,
        }
