"""`evaluate` metric modules shipped with the package; load them by path (no Hub access needed):

    import evaluate
    from video_lavit.metrics import VIDEO_QA_ACCURACY
    metric = evaluate.load(VIDEO_QA_ACCURACY)
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent

# evaluate.load takes the folder `<name>/` holding `<name>.py`
VIDEO_QA_ACCURACY = str(_HERE / "video_qa_accuracy")


def metric_path(name: str) -> str:
    """Absolute folder of the shipped metric `name`, for `evaluate.load`."""
    folder = _HERE / name
    if not (folder / f"{name}.py").is_file():
        available = sorted(p.name for p in _HERE.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"no shipped metric named {name!r}; available: {available}")
    return str(folder)


__all__ = ["VIDEO_QA_ACCURACY", "metric_path"]
