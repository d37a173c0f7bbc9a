import json
import subprocess
import sys

import pytest
from PIL import Image

from citrusv.cli import main
from conftest import random_image


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("infer", "demo", "convert", "tiny"):
        assert command in out


def test_infer_writes_masks_overlay_and_json(native_checkpoint, tmp_path, capsys):
    image = tmp_path / "scan.png"
    random_image(60, 80).save(image)
    code = main(["infer", "--model", str(native_checkpoint), "--image", str(image), "--prompt", "Describe.",
                 "--max-new-tokens", "4", "--out", str(tmp_path / "out")])
    assert code == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["num_generated_tokens"] <= 4 and result["image_size"]["orig_hw"] == [60, 80]
    assert Image.open(tmp_path / "out" / "overlay.png").size == (80, 60)
    assert "wrote" in capsys.readouterr().out


def test_bad_image_is_one_clear_line(native_checkpoint, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code = main(["infer", "--model", str(native_checkpoint), "--image", str(bad), "--prompt", "x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "citrusv infer: error:" in err and "bad.png" in err


def test_tiny_and_convert_released(tmp_path, capsys):
    assert main(["tiny", "--out", str(tmp_path / "rel"), "--layout", "released"]) == 0
    assert main(["convert", "released", "--src", str(tmp_path / "rel"), "--out", str(tmp_path / "native")]) == 0
    config = json.loads((tmp_path / "native" / "config.json").read_text())
    assert "mllm_config" in config and "seg_token_idx" not in config
    assert (tmp_path / "native" / "citrusv_processor.json").is_file()
    assert "7 video-only SAM2 weights dropped" in capsys.readouterr().out


def test_module_entry_point_and_fast_import():
    out = subprocess.run([sys.executable, "-c", "import sys, citrusv; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # `import citrusv` stays light; names load lazily
    version = subprocess.run([sys.executable, "-m", "citrusv", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("citrusv ")


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "MEANINGLESS" in out and "[4/4] done" in out
    assert (tmp_path / "segmentation" / "mask_1.png").is_file()
    grounding = json.loads((tmp_path / "grounding" / "result.json").read_text())
    assert grounding["boxes"][0]["label"] == "liver"
