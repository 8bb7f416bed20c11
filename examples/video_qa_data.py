"""Local video question-answering data for the examples: a JSON / JSON-lines / CSV file of (video, question, answer).

Each record has `video` (a path, relative to the data file's folder or absolute), `question` and either `answer` (a
string) or `answers` (a list of acceptable strings; JSON only). The result is a `datasets.Dataset` with the columns
`video` (`datasets.Video(decode=False)`: `{"path", "bytes"}`, decoded later by our processor with PyAV),
`question` and `answers` (a list of strings).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import datasets

REQUIRED = ("video", "question")


def _read_records(data_file: Path) -> list[dict]:
    if data_file.suffix == ".csv":
        with data_file.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if data_file.suffix == ".jsonl":
        lines = data_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    if data_file.suffix == ".json":
        records = json.loads(data_file.read_text(encoding="utf-8"))
        if not isinstance(records, list):
            raise ValueError(f"{data_file} must hold a JSON list of records, got {type(records).__name__}")
        return records
    raise ValueError(f"data file must end in .json, .jsonl or .csv, got {data_file.name}")


def _answers(record: dict, index: int) -> list[str]:
    if "answers" in record:
        answers = record["answers"]
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise TypeError(f"record {index}: 'answers' must be a list of strings, got {answers!r}")
    elif "answer" in record:
        answers = [record["answer"]]
    else:
        raise ValueError(f"record {index} has keys {sorted(record)}; expected 'answer' or 'answers'")
    if not answers or any(not a.strip() for a in answers):
        raise ValueError(f"record {index}: empty answer in {answers!r}")
    return answers


def load_video_qa(data_file: str | Path) -> datasets.Dataset:
    """Read `data_file` into a `datasets.Dataset` (columns `video`, `question`, `answers`); videos must exist."""
    data_file = Path(data_file)
    records = _read_records(data_file)
    if not records:
        raise ValueError(f"{data_file} holds no records")
    videos, questions, answers = [], [], []
    for index, record in enumerate(records):
        missing = [key for key in REQUIRED if not record.get(key)]
        if missing:
            raise ValueError(f"record {index} of {data_file.name} lacks {missing}")
        video = Path(record["video"])
        video = video if video.is_absolute() else data_file.parent / video
        if not video.is_file():
            raise FileNotFoundError(f"record {index}: video {video} does not exist")
        videos.append(str(video))
        questions.append(record["question"])
        answers.append(_answers(record, index))
    dataset = datasets.Dataset.from_dict({"video": videos, "question": questions, "answers": answers})
    # decode=False: datasets would decode with torchcodec; the processor reads the file with PyAV instead
    return dataset.cast_column("video", datasets.Video(decode=False))


def video_source(video: dict) -> str:
    """The file path of a `Video(decode=False)` value (rows restored by `load_from_disk` carry bytes instead)."""
    path = video.get("path")
    if path and Path(path).is_file():
        return path
    if video.get("bytes"):
        import hashlib
        import tempfile

        digest = hashlib.sha1(video["bytes"]).hexdigest()[:16]
        target = Path(tempfile.gettempdir()) / f"video_lavit_{digest}{Path(path or 'v.mp4').suffix or '.mp4'}"
        if not target.is_file():
            target.write_bytes(video["bytes"])
        return str(target)
    raise FileNotFoundError(f"video {path!r} does not exist and the row carries no bytes")


def conversation(question: str, answer: str | None = None) -> list[dict]:
    """The chat messages of one video question (and its answer, for training)."""
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages
