import pytest

from citrusv.processing.reasoning import parse_reasoning


@pytest.mark.parametrize("text, think, answer, warns", [
    ("<think>ribs, lungs</think><answer>Normal.</answer>", "ribs, lungs", "Normal.", []),
    ("  plain answer  ", None, "plain answer", []),
    ("<think>step 1\nstep 2</think>\nThe heart is enlarged.", "step 1\nstep 2", "The heart is enlarged.", []),
    ("<think>cut off in the mid", "cut off in the mid", "", ["unterminated <think>"]),
    ("<think>a<answer>b</answer>", "a", "b", ["unterminated <think>"]),
    ("<answer>b", None, "b", ["unterminated <answer>"]),
    ("reasoning</think><answer>x</answer>", "reasoning", "x", ["</think> without <think>"]),
    ("<think>a</think>junk<answer>x</answer>", "a", "x", ["text outside"]),
])
def test_sections(text, think, answer, warns):
    parts = parse_reasoning(text)
    assert parts.think == think and parts.answer == answer
    assert len(parts.warnings) == len(warns)
    for expected, got in zip(warns, parts.warnings):
        assert expected in got


def test_non_text_input_is_a_warning():
    parts = parse_reasoning(None)
    assert parts.answer == "" and parts.warnings
