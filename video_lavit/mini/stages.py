# Copyright 2026 The Video-LaVIT reimplementation authors. Apache-2.0.
"""Training objectives of the miniature's stages as `nn.Module`s returning `{"loss": ...}`, so that
`transformers.Trainer` drives every stage, plus the small `run_trainer` helper they share."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class TensorRows(torch.utils.data.Dataset):
    """Rows of a dict of equally long tensors / lists."""

    def __init__(self, columns: dict):
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"columns must have one length, got {({k: len(v) for k, v in columns.items()})}")
        self.columns = columns
        self.length = lengths.pop()

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return {k: v[index] for k, v in self.columns.items()}


def stack_collate(rows: list[dict]) -> dict:
    return {k: torch.stack([torch.as_tensor(r[k]) for r in rows]) for k in rows[0]}


def run_trainer(module: nn.Module, dataset, collate, *, steps: int, batch_size: int, learning_rate: float,
                seed: int, output_dir: str, weight_decay: float = 0.0, warmup_steps: int = 20) -> list[float]:
    """Train `module` (whose forward returns `{"loss": ...}`) with `transformers.Trainer` on the CPU; returns the
    logged losses."""
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=learning_rate,
        weight_decay=weight_decay, lr_scheduler_type="cosine", warmup_steps=warmup_steps, max_grad_norm=1.0,
        logging_steps=max(1, steps // 10), save_strategy="no", report_to="none", seed=seed, data_seed=seed,
        use_cpu=True, dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=False,
    )
    trainer = Trainer(model=module, args=args, train_dataset=dataset, data_collator=collate)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"non-finite training loss: {losses}")
    return losses


class VisualEncoderPretraining(nn.Module):
    """Stand-in for the CLIP pre-training of the keyframe tokenizer's ViT (the real one is a frozen EVA-CLIP):
    colour and shape classification from the mean patch feature and, per patch, the fraction covered by the
    shape, so the patch features carry what the captions talk about and where it is."""

    def __init__(self, vision_model: nn.Module, hidden_size: int, num_colours: int, num_shapes: int):
        super().__init__()
        self.vision_model = vision_model
        self.colour_head = nn.Linear(hidden_size, num_colours)
        self.shape_head = nn.Linear(hidden_size, num_shapes)
        self.cover_head = nn.Linear(hidden_size, 1)

    def forward(self, pixel_values, colour, shape, cover):
        patches = self.vision_model(pixel_values)[:, 1:]
        pooled = patches.mean(dim=1)
        loss = F.cross_entropy(self.colour_head(pooled), colour) + F.cross_entropy(self.shape_head(pooled), shape)
        loss = loss + 5.0 * F.mse_loss(self.cover_head(patches).squeeze(-1), cover)
        return {"loss": loss}


class VisualQuantizerTraining(nn.Module):
    """Keyframe tokenizer stage: token merger + code projection + codebook learn to reconstruct the (frozen)
    encoder features from the quantized codes through a throw-away linear decoder (VQ-VAE loss with a
    straight-through estimator; the codebook is learned by gradient). The target features are standardised per
    channel (`feature_mean` / `feature_std`, from real keyframes): at this size the colour lives in low-variance
    channels that a plain MSE lets the codes drop."""

    def __init__(self, tokenizer: nn.Module, feature_mean: torch.Tensor, feature_std: torch.Tensor,
                 commitment_cost: float = 0.25):
        super().__init__()
        self.tokenizer = tokenizer
        config = tokenizer.config
        self.decoder = nn.Sequential(nn.Linear(config.code_dim, config.hidden_size), nn.GELU(),
                                     nn.Linear(config.hidden_size, config.hidden_size))
        self.register_buffer("feature_mean", feature_mean, persistent=False)
        self.register_buffer("feature_std", feature_std, persistent=False)
        self.commitment_cost = commitment_cost

    def forward(self, pixel_values):
        tok = self.tokenizer
        with torch.no_grad():
            features = tok.get_encoder_features(pixel_values)
        policy = torch.ones(features.shape[:2], dtype=features.dtype)
        merged = tok.merge_tokens(features, policy)
        query = F.normalize(tok.code_projection(merged), dim=-1)
        codebook = tok.quantizer.codebook.weight
        distances = query.pow(2).sum(-1, keepdim=True) + codebook.pow(2).sum(-1) - 2 * query @ codebook.t()
        codes = distances.argmin(dim=-1)
        quantized = codebook[codes]
        vq_loss = F.mse_loss(quantized, query.detach()) + self.commitment_cost * F.mse_loss(query, quantized.detach())
        straight = query + (quantized - query).detach()
        rec = F.mse_loss(self.decoder(straight), (features - self.feature_mean) / self.feature_std)
        return {"loss": rec + vq_loss}


class MotionTokenizerTraining(nn.Module):
    """The motion tokenizer's own training step (MSE reconstruction + commitment, EMA codebook)."""

    def __init__(self, tokenizer: nn.Module):
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, motion_vectors):
        return {"loss": self.tokenizer(motion_vectors).loss}


class LanguageModelTraining(nn.Module):
    """Wraps `VideoLavitForConditionalGeneration` so only `loss` goes back to the Trainer."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, **batch):
        return {"loss": self.model(**batch).loss}


__all__ = [
    "LanguageModelTraining",
    "MotionTokenizerTraining",
    "TensorRows",
    "VisualEncoderPretraining",
    "VisualQuantizerTraining",
    "run_trainer",
    "stack_collate",
]
