"""Parity of the language model with the original (fixtures llm_forward / llm_understanding_generate) and the
released key lists of language_model/ and language_model_sft/."""

import pytest
import torch

from video_lavit.conversion import verify_parity
from video_lavit.conversion.parity.common import Fixture
from video_lavit.conversion.parity.llm import (
    check_llm_forward,
    check_llm_understanding_generate,
    check_released_language_model,
    check_released_language_model_sft,
    config_from_fixture,
    token_layout_from_fixture,
)


@pytest.mark.parametrize("name, check", [("llm_forward", check_llm_forward),
                                         ("llm_understanding_generate", check_llm_understanding_generate)])
def test_fixture_parity(fixtures_dir, name, check):
    results = check(Fixture.load(fixtures_dir / f"{name}.json"), None)
    assert results and all(r.passed for r in results), [r for r in results if not r.passed]


def test_verify_parity_cli(fixtures_dir, released_keys_dir):
    argv = [str(fixtures_dir), "--only", "llm_forward", "--only", "llm_understanding_generate"]
    for stem in ("language_model", "language_model_sft"):
        argv += ["--released-keys", str(released_keys_dir / f"{stem}.json")]
    assert verify_parity.main(argv) == 0


def test_released_checks_detect_a_missing_key(released_keys_dir):
    import json

    info = json.loads((released_keys_dir / "language_model.json").read_text())
    keys = {k: tuple(s) for k, s in info["keys"]}
    assert all(r.passed for r in check_released_language_model(keys, info))
    keys.pop("model.layers.3.mlp.up_proj.weight")
    keys["model.layers.0.self_attn.q_proj.weight"] = (4096, 4095)
    failed = {r.name for r in check_released_language_model(keys, info) if not r.passed}
    assert failed == {"language_model: every parameter filled", "language_model: shapes match"}
    sft = json.loads((released_keys_dir / "language_model_sft.json").read_text())
    sft_keys = {k: tuple(s) for k, s in sft["keys"]}
    assert all(r.passed for r in check_released_language_model_sft(sft_keys, sft))


def test_fixture_layout_is_read_not_assumed(fixtures_dir):
    spec = Fixture.load(fixtures_dir / "llm_forward.json").spec
    config = config_from_fixture(spec)
    layout = spec["token_layout"]
    assert config.image_start_token_id == layout["image_start"]
    assert config.motion_token_offset == layout["motion_codes"][0]
    assert config.text_config.hidden_size == spec["llama_config"]["hidden_size"]
    bad = dict(spec, constant_substitutions={"mapping_old_to_new": {"48388": layout["motion_codes"][0] + 1}})
    with pytest.raises(ValueError, match="48388"):
        token_layout_from_fixture(bad)


def test_parity_fails_on_wrong_weights(fixtures_dir, monkeypatch):
    """The check is able to fail: perturbing one converted weight breaks the logits comparison."""
    import video_lavit.conversion.parity.llm as llm

    original = llm.convert_language_model_state_dict

    def perturbed(state_dict):
        converted = original(state_dict)
        converted["lm_head.weight"] = converted["lm_head.weight"] + 0.01 * torch.ones_like(converted["lm_head.weight"])
        return converted

    monkeypatch.setattr(llm, "convert_language_model_state_dict", perturbed)
    results = check_llm_forward(Fixture.load(fixtures_dir / "llm_forward.json"), None)
    failed = {r.name for r in results if not r.passed}
    assert "output.logits" in failed
