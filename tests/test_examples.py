"""examples/ and the shipped evaluate metric: LoRA video-QA fine-tuning with Trainer on a local `datasets` dataset,
video-QA evaluation scored by `video_lavit/metrics/video_qa_accuracy` (loaded by path, offline), on the miniature."""

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import datasets
import evaluate
import pytest
import torch

import video_lavit
from video_lavit.metrics import VIDEO_QA_ACCURACY, metric_path
from video_lavit.processing.processing_video_lavit import VideoLavitProcessor
from video_lavit.testing import build_tiny_converted_video_lavit, write_sliding_texture_video

REPO = Path(__file__).resolve().parent.parent
QA = [("What moves?", "the picture"), ("Which way does it go?", "left"), ("Is it bright?", "yes")]


def load_example(name: str):
    module_name = f"video_lavit_example_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, REPO / "examples" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # the examples' dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The converted layout on the miniature: understanding model + processor at the root."""
    return build_tiny_converted_video_lavit(tmp_path_factory.mktemp("examples") / "video-lavit-hf", seed=0)


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    data = tmp_path_factory.mktemp("qa_data")
    (data / "videos").mkdir()
    records = []
    for i, (question, answer) in enumerate(QA):
        write_sliding_texture_video(data / "videos" / f"v{i}.mp4", seed=i)
        records.append({"video": f"videos/v{i}.mp4", "question": question, "answer": answer})
    path = data / "qa.json"
    path.write_text(json.dumps(records))
    return path


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(VIDEO_QA_ACCURACY)


# ------------------------------------------------------------------------------------------------------ metric


def test_metric_scores_known_predictions(metric):
    predictions = ["A dog.", "The dog is running to the LEFT!", "a door", "Yes", "it is raining", "Café"]
    references = ["dog", "left", "dog", "yes", "sunny", "café"]
    result = metric.compute(predictions=predictions, references=references)
    # contains: 1, 2, 4, 6 ("a door" does not contain the word "dog"); exact: 1, 4, 6 (articles and case ignored)
    assert result == {"accuracy": 4 / 6, "exact_match": 3 / 6, "contains_match": 4 / 6, "num_examples": 6}
    assert metric.compute(predictions=predictions, references=references, match="exact")["accuracy"] == 3 / 6
    # several acceptable answers: any one counts
    multi = metric.compute(predictions=["a puppy", "two"], references=[["dog", "puppy"], ["2", "three"]])
    assert multi["exact_match"] == 0.5 and multi["num_examples"] == 2
    # word boundaries: "do" is not in "dog", "new york" is a run of words
    words = metric.compute(predictions=["dog", "I saw New-York city"], references=["do", "new york"])
    assert words["contains_match"] == 0.5
    # Unicode: NFKC folds the full-width letters, Unicode punctuation is a break
    assert metric.compute(predictions=["ｙｅｓ。"], references=["yes"])["exact_match"] == 1.0


def test_metric_batches_and_loads_by_name(metric):
    assert metric_path("video_qa_accuracy") == VIDEO_QA_ACCURACY
    with pytest.raises(ValueError, match="no shipped metric named 'bleu'"):
        metric_path("bleu")
    metric.add_batch(predictions=["red"], references=["red"])
    metric.add_batch(predictions=["blue car"], references=["green"])
    assert metric.compute()["accuracy"] == 0.5


def test_metric_rejects_bad_input(metric):
    with pytest.raises(ValueError, match="empty after normalisation"):
        metric.compute(predictions=["a cat"], references=["the"])  # "the" would match anything
    with pytest.raises(ValueError, match="match must be one of"):
        metric.compute(predictions=["a"], references=["b"], match="fuzzy")
    with pytest.raises(ValueError):
        metric.compute(predictions=["a", "b"], references=["a"])


# ------------------------------------------------------------------------------------------------------ data


def test_local_data_becomes_a_video_dataset(qa_file, tmp_path):
    data = load_example("video_qa_data")
    dataset = data.load_video_qa(qa_file)
    assert isinstance(dataset.features["video"], datasets.Video) and not dataset.features["video"].decode
    assert dataset["question"] == [q for q, _ in QA] and dataset["answers"] == [[a] for _, a in QA]
    assert dataset[0]["video"]["path"] == str(qa_file.parent / "videos" / "v0.mp4")
    # CSV and JSON lines give the same rows; JSON may list several answers
    csv_file = tmp_path / "qa.csv"
    with csv_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["video", "question", "answer"])
        writer.writeheader()
        video = str(qa_file.parent / "videos" / "v1.mp4")
        writer.writerow({"video": video, "question": "Which way?", "answer": "left"})
    assert data.load_video_qa(csv_file)["answers"] == [["left"]]
    jsonl = tmp_path / "qa.jsonl"
    record = {"video": str(qa_file.parent / "videos/v2.mp4"), "question": "q", "answers": ["a", "b"]}
    jsonl.write_text(json.dumps(record))
    assert data.load_video_qa(jsonl)["answers"] == [["a", "b"]]
    # rows restored from save_to_disk carry the bytes; they are written back to a file the processor can read
    restored = data.video_source({"path": "gone.mp4", "bytes": (qa_file.parent / "videos" / "v0.mp4").read_bytes()})
    assert Path(restored).read_bytes() == (qa_file.parent / "videos" / "v0.mp4").read_bytes()


def test_bad_data_is_refused(qa_file, tmp_path):
    data = load_example("video_qa_data")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"video": "missing.mp4", "question": "q", "answer": "a"}]))
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        data.load_video_qa(bad)
    bad.write_text(json.dumps([{"video": str(qa_file.parent / "videos/v0.mp4"), "question": "q"}]))
    with pytest.raises(ValueError, match="expected 'answer' or 'answers'"):
        data.load_video_qa(bad)
    with pytest.raises(ValueError, match=r"\.json, \.jsonl or \.csv"):
        data.load_video_qa(tmp_path / "qa.txt")


# ------------------------------------------------------------------------------------------------------ fine-tuning


@pytest.fixture(scope="module")
def finetuned(model_dir, qa_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "adapter"
    finetune = load_example("finetune_lora")
    trainer = finetune.main([
        "--model", str(model_dir), "--data", str(qa_file), "--output-dir", str(out), "--max-steps", "2",
        "--batch-size", "2", "--learning-rate", "1e-2", "--use-cpu", "--logging-steps", "1", "--max-clips", "2",
    ])
    return trainer, out


def test_featurizer_masks_the_prompt_and_targets_the_answer(model_dir, qa_file):
    from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
    from video_lavit.training import VideoLavitDataCollator

    finetune, data = load_example("finetune_lora"), load_example("video_qa_data")
    processor = VideoLavitProcessor.from_pretrained(model_dir)
    dataset = data.load_video_qa(qa_file).with_transform(finetune.VideoQaFeaturizer(processor, max_clips=2))
    row = dataset[0]
    assert (row["prompt_ids"] == -201).sum() == 1 and row["prompt_ids"][0] == processor.tokenizer.bos_token_id
    # the answer turn of the template: the answer, the literal "\n" separator and </s> (EOS)
    answer_ids = row["answer_ids"].tolist()
    assert answer_ids[-1] == processor.tokenizer.eos_token_id
    assert processor.tokenizer.decode(answer_ids, skip_special_tokens=True).strip() == "the picture \\n"
    clips = int(row["clips_per_video"].sum())
    assert row["pixel_values"].shape[0] == clips and row["motion_vectors"].shape == (clips, 2, 24, 20, 36)

    model = VideoLavitForConditionalGeneration.from_pretrained(model_dir)
    batch = VideoLavitDataCollator(model.config)([dataset[0], dataset[1]])
    with torch.no_grad():
        out = model(**batch)
    targets = out.labels[out.labels != -100].tolist()
    assert targets == answer_ids + dataset[1]["answer_ids"].tolist()
    assert math.isfinite(out.loss.item())


def test_lora_finetuning_trains_saves_and_reloads(finetuned, model_dir, qa_file):
    from peft import PeftModel

    from video_lavit.modeling.modeling_video_lavit import VideoLavitForConditionalGeneration
    from video_lavit.training import VideoLavitDataCollator

    trainer, out = finetuned
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert trainer.state.global_step == 2
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    assert (out / "processor_config.json").is_file()  # the adapter folder also carries the processor
    # only LoRA weights of the Llama projections were trained; the tokenizers stayed frozen
    trained = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in name and "language_model" in name for name in trained)

    finetune, data = load_example("finetune_lora"), load_example("video_qa_data")
    processor = VideoLavitProcessor.from_pretrained(model_dir)
    dataset = data.load_video_qa(qa_file).with_transform(finetune.VideoQaFeaturizer(processor, max_clips=2))
    batch = VideoLavitDataCollator(trainer.model.config)([dataset[0], dataset[2]])
    # fixed keyframe features: the tokenizer's random patch selection must not differ between the models compared
    base = VideoLavitForConditionalGeneration.from_pretrained(model_dir).eval()
    with torch.no_grad():
        features = base.model.get_visual_features(batch.pop("pixel_values"), generator=torch.Generator().manual_seed(0))
        batch["visual_features"] = features
        base_logits = base(**batch).logits
        trained_logits = trainer.model.eval()(**batch).logits
        reloaded = PeftModel.from_pretrained(VideoLavitForConditionalGeneration.from_pretrained(model_dir), out).eval()
        reloaded_logits = reloaded(**batch).logits
    torch.testing.assert_close(reloaded_logits, trained_logits)
    assert (trained_logits - base_logits).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------------------ evaluation


def test_video_qa_evaluation_scores_with_the_shipped_metric(model_dir, qa_file, tmp_path):
    evaluation = load_example("evaluate_video_qa")
    argv = ["--model", str(model_dir), "--max-new-tokens", "6", "--max-clips", "2", "--device", "cpu"]
    first = evaluation.main(argv + ["--data", str(qa_file), "--output", str(tmp_path / "first.json")])
    predictions = first["predictions"]
    assert len(predictions) == 3 and all(isinstance(p, str) for p in predictions)
    saved = json.loads((tmp_path / "first.json").read_text())
    assert [row["prediction"] for row in saved["predictions"]] == predictions
    assert saved["scores"]["num_examples"] == 3

    # references made from the model's own (seeded, greedy) answers: known accuracy on a second run, batched
    assert predictions[0].strip(), "the miniature produced an empty answer; choose another seed"
    records = json.loads(qa_file.read_text())
    records[0]["answer"] = predictions[0]
    records[1]["answers"] = ["zebra crossing", predictions[1]]
    del records[1]["answer"]
    records[2]["answer"] = "zzzz"
    known = tmp_path / "known.json"
    for record in records:
        record["video"] = str(qa_file.parent / record["video"])
    known.write_text(json.dumps(records))
    second = evaluation.main(argv + ["--data", str(known), "--match", "exact"])
    assert second["predictions"] == predictions
    assert second["accuracy"] == pytest.approx(2 / 3) and second["exact_match"] == pytest.approx(2 / 3)


def test_evaluation_with_the_finetuned_adapter(finetuned, model_dir, qa_file):
    _, adapter = finetuned
    evaluation = load_example("evaluate_video_qa")
    argv = ["--model", str(model_dir), "--data", str(qa_file), "--max-new-tokens", "6", "--max-clips", "2",
            "--device", "cpu", "--batch-size", "2"]
    with_adapter = evaluation.main(argv + ["--adapter", str(adapter)])
    assert with_adapter["num_examples"] == 3 and len(with_adapter["predictions"]) == 3
    metric = evaluate.load(VIDEO_QA_ACCURACY)
    recomputed = metric.compute(predictions=with_adapter["predictions"], references=[[a] for _, a in QA])
    assert with_adapter["accuracy"] == recomputed["accuracy"]
