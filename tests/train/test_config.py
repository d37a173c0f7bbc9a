import pytest

from citrusv.train.config import TrainConfig, load_stage_config

TABLE4 = {  # the paper's Table 4: learning rate per component (None = frozen), epochs, gradient scale
    1: ({"llm": None, "vit": 2e-6, "aligner": 1e-5, "seg": None}, 1, 1.0),
    2: ({"llm": 1e-5, "vit": 2e-6, "aligner": 1e-5, "seg": None}, 2, 1.0),
    3: ({"llm": 1e-5, "vit": 2e-6, "aligner": 1e-5, "seg": 1e-5}, 3, 0.001),
    4: ({"llm": None, "vit": None, "aligner": None, "seg": 8e-5}, 10, 1.0),
}


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_presets_follow_table_4(stage):
    config = load_stage_config(stage)
    rates, epochs, scale = TABLE4[stage]
    assert config.stage == stage and config.learning_rates == rates
    assert config.epochs == epochs and config.seg_grad_scale == scale
    assert (config.weight_decay, config.max_grad_norm, config.gradient_checkpointing) == (0.1, 1.0, True)
    assert config.mixed_precision == "auto"


def test_overrides_and_round_trip(tmp_path):
    config = load_stage_config(3, overrides={"learning_rates.seg": 1e-4, "epochs": 0.5, "max_length": 4096})
    assert config.learning_rates["seg"] == 1e-4 and config.epochs == 0.5 and config.max_length == 4096
    config.save(tmp_path / "c.yaml")
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == config


@pytest.mark.parametrize("overrides, match", [
    ({"learning_rates.eye": 1e-5}, "unknown components"),
    ({"learning_rates.llm": -1.0}, "must be > 0"),
    ({"seg_grad_scale": 0.0}, "seg_grad_scale"),
    ({"mixed_precision": "fp8"}, "mixed_precision"),
    ({"max_length": 0}, "max_length"),
    ({"bogus": 1}, "unknown training config keys"),
    ({"epochs.x": 1}, "not a mapping"),
])
def test_invalid_overrides_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        load_stage_config(3, overrides=overrides)


def test_everything_frozen_is_rejected():
    with pytest.raises(ValueError, match="nothing would train"):
        load_stage_config(4, overrides={"learning_rates.seg": None})
    with pytest.raises(ValueError, match="stage must be"):
        load_stage_config(5)
