"""A qualification's overall verdict from its checks (pure): pass only when every gated check passed."""

from __future__ import annotations

import pytest

from gate.qualifications import plans
from gate.qualifications.verdict import CheckState, overall


def state(name: str, status: str = "succeeded", verdict: str | None = "pass", gated: bool = True, **kw) -> CheckState:
    return CheckState(name=name, gated=gated, run_id=len(name), status=status, verdict=verdict, **kw)


def test_every_gated_pass_is_a_pass() -> None:
    found = overall([state("accuracy"), state("alignment"), state("smoke")])
    assert (found.status, found.verdict, found.reasons) == ("finished", "pass", [])


def test_one_failed_gate_fails_and_names_it() -> None:
    found = overall([state("accuracy", verdict="fail"), state("alignment")])
    assert found.verdict == "fail"
    assert found.reasons == ["accuracy (run 8) failed its gate"]


def test_a_failed_run_is_run_failed_never_fail_even_beside_a_failed_gate() -> None:
    found = overall([state("accuracy", verdict="fail"), state("serving", status="failed", verdict=None)])
    assert found.verdict == "run_failed"
    assert found.reasons == ["serving (run 7) failed: it was not judged"]
    assert overall([state("smoke", status="cancelled", verdict=None)]).verdict == "run_failed"


def test_not_comparable_is_never_a_pass() -> None:
    found = overall([state("accuracy", verdict="not_comparable"), state("smoke")])
    assert found.verdict == "not_comparable"


def test_a_check_judged_by_nothing_is_measured_not_counted() -> None:
    assert overall([state("serving", verdict=None), state("accuracy")]).verdict == "pass"
    alone = overall([state("serving", verdict=None)])
    assert (alone.verdict, alone.reasons) == ("not_comparable", ["no check was gated: nothing was judged"])


def test_an_ungated_fail_does_not_fail_the_qualification() -> None:
    assert overall([state("smoke", verdict="fail", gated=False), state("accuracy")]).verdict == "pass"


def test_each_accuracy_benchmark_is_gated_and_one_failing_fails_naming_it() -> None:
    found = overall([state("accuracy:gsm8k"), state("accuracy:mmlu", verdict="fail"), state("smoke")])
    assert (found.verdict, found.reasons) == ("fail", ["accuracy:mmlu (run 13) failed its gate"])
    assert overall([state("accuracy:gsm8k"), state("accuracy:humaneval", verdict="not_comparable")]).verdict == (
        "not_comparable"
    )


def test_unfinished_checks_give_no_verdict_and_a_waiting_check_says_why() -> None:
    waiting = overall([state("accuracy"), state("serving", status="queued", verdict=None, waiting="no worker")])
    assert (waiting.status, waiting.verdict) == ("waiting", None)
    assert waiting.reasons == ["serving (run 7) is waiting: no worker"]
    running = overall([state("accuracy", status="running", verdict=None), state("smoke", verdict="fail")])
    assert (running.status, running.verdict) == ("running", None)


NO_SERVING = "the serving check needs backend vllm, vllm-ascend, openai, not 'hf': leave it out with \"checks\"."
REQUEST = {"model": "/models/port", "backend": "vllm-ascend", "device": "npu:0", "dtype": "bfloat16"}


def test_the_card_plan_runs_its_four_checks_in_order() -> None:
    planned = plans.expand("card", {**REQUEST, "engine_args": {"enforce_eager": True}, "reference_run": 41})
    assert [p.name for p in planned] == ["accuracy", "alignment", "serving", "smoke"]
    accuracy, alignment, serving, smoke = planned
    assert (accuracy.tasks, accuracy.options) == (["gsm8k"], {"num_fewshot": 5})
    assert alignment.options["candidate"] == {
        "model": "/models/port",
        "backend": "vllm-ascend",
        "device": "npu:0",
        "dtype": "bfloat16",
        "engine_args": {"enforce_eager": True},
    }
    assert serving.options["engine_args"] == {"dtype": "bfloat16", "enforce_eager": True}
    assert (serving.options["profile"], serving.options["reference_run"]) == ("card", 41)
    assert smoke.options["device"] == "npu:0"
    assert {p.backend for p in planned} == {"vllm-ascend"}


def test_a_check_is_tuned_under_its_name() -> None:
    planned = plans.expand(
        "card", {**REQUEST, "checks": ["accuracy", "smoke"], "accuracy": {"limit": 8, "tasks": ["gsm8k"]},
                 "smoke": {"prompts": ["hi"]}}
    )  # fmt: skip
    assert planned[0].options == {"num_fewshot": 5, "limit": 8}
    assert planned[1].options["prompts"] == ["hi"]


def test_several_benchmarks_are_one_check_each_at_their_own_n_shot() -> None:
    tuned = {**REQUEST, "checks": ["accuracy"], "accuracy": {"tasks": ["minerva_math", "mmlu", "arc_easy"]}}
    planned = plans.expand("card", tuned, {"gsm8k": 5, "mmlu": 5, "minerva_math": 4, "humaneval": 0})
    assert [(p.name, p.kind, p.tasks, p.options, p.gated) for p in planned] == [
        ("accuracy:minerva_math", "accuracy", ["minerva_math"], {"num_fewshot": 4}, True),
        ("accuracy:mmlu", "accuracy", ["mmlu"], {"num_fewshot": 5}, True),
        ("accuracy:arc_easy", "accuracy", ["arc_easy"], {}, True),  # no baseline entry: lm-eval's default
    ]
    [alone] = plans.expand("card", {**tuned, "accuracy": {"tasks": ["humaneval"]}}, {"humaneval": 0})
    assert (alone.name, alone.options) == ("accuracy", {"num_fewshot": 0})  # one task: named as it always was
    [unlisted] = plans.expand("card", {**tuned, "accuracy": {"tasks": ["arc_easy"]}}, {})
    assert unlisted.options == {"num_fewshot": 5}  # the gate's protocol where the baseline says nothing


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"checks": ["speed"]}, "plan 'card' has no check speed; it has accuracy, alignment, serving, smoke."),
        ({"checks": ["smoke", "smoke"]}, "checks names a check twice."),
        ({"checks": ["smoke"], "serving": {"rounds": 1}}, "serving is tuned but not among the checks to run."),
        ({"backend": "hf"}, NO_SERVING),
        ({"checks": ["accuracy"], "accuracy": {"tasks": ["mmlu", "gsm8k", "mmlu"]}}, "accuracy names task mmlu twice."),
    ],
)  # fmt: skip
def test_bad_plans_are_one_sentence(request_: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        plans.expand("card", {**REQUEST, **request_})
    assert str(caught.value) == message


def test_an_unknown_plan_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown plan 'nightly'; known: card\."):
        plans.expand("nightly", REQUEST)
