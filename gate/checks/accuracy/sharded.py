"""A sharded accuracy run that may stop early: `python -m gate.checks.accuracy.sharded JOB.json OUT_DIR`.

lm-eval builds the full request list once, exactly as a full run does (its task config, prompt and few-shot
sampler: one seeded generator in document order), and hands it to this module's LM in one call. That LM answers
the documents in a seeded random order, in shards, through the real LM (hf, vllm, local-completions), scores each
shard with the task's own filters and process_results, prints its progress as a line the worker's progress
reader knows, and asks the stop rules (gate.verdicts.sequential). Unstopped, lm-eval's own evaluate() scores
every answer: the score is a full run's. Stopped, the task's documents are narrowed to the answered ones before
lm-eval scores them, so the files hold what was answered, with `stopped: {at, of, rule, reason, bound}`.

What it supports: one generate_until task (GSM8K-like), one request per document, no limit, no response cache.
The worker uses lm-eval's CLI for everything else (gate.checks.accuracy.command.sharding).
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gate.checks.accuracy import datasets, judge
from gate.verdicts import sequential, trail

ORDER_SEED = 1234  # the random order of the questions; any fixed seed keeps a run reproducible


def _stop_rules(job: dict[str, Any], total: int) -> tuple[sequential.Gate, sequential.ConfidenceSequence | None]:
    rules = job["rules"]
    baseline, tolerance, two_sided = rules["baseline"], rules["tolerance_pp"], rules["two_sided"]
    gate = sequential.Gate(
        baseline=baseline,
        tolerance_pp=tolerance,
        two_sided=two_sided,
        passes=lambda s: judge.within_tolerance(judge.delta_pp(s, baseline), tolerance, two_sided),
    )
    early = rules.get("early_stop")
    sequence = sequential.score_sequence(total, early["alpha"]) if early else None
    return gate, sequence


def make_lm(inner: Any, task: Any, job: dict[str, Any]) -> Any:
    from lm_eval.api.model import LM

    metric, _, filter_key = job["rules"]["metric"].partition(",")

    class Sharded(LM):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.stopped: dict[str, Any] | None = None
            self.answered: list[int] = []
            self.total = 0
            self.trail: list[list[Any]] = []  # the running estimate after each shard (gate.verdicts.trail)

        def __getattr__(self, name: str) -> Any:  # tokenizer, chat template, model info: the real LM's
            return getattr(self.__dict__["inner"], name)

        def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.apply_chat_template(*args, **kwargs)

        def chat_template(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.chat_template(*args, **kwargs)

        @property
        def tokenizer_name(self) -> str:
            return str(getattr(self.inner, "tokenizer_name", ""))

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
            raise NotImplementedError("the sharded driver runs generate_until tasks only")

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[Any]:
            raise NotImplementedError("the sharded driver runs generate_until tasks only")

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            by_doc: dict[int, Any] = {}
            for request in requests:
                if request.doc_id in by_doc or request.repeats != 1:
                    raise ValueError("the sharded driver needs one request per document, unrepeated")
                by_doc[request.doc_id] = request
            total = self.total = len(by_doc)
            order = sorted(by_doc)
            random.Random(job.get("seed", ORDER_SEED)).shuffle(order)
            gate, sequence = _stop_rules(job, total)
            answers: dict[int, str] = {}
            right = 0
            first, most = job.get("first_shard", sequential.FIRST_SHARD), job.get("shard_size", sequential.SHARD_MOST)
            ends = sequential.shard_ends(total, first, most)
            for shard in (order[start:end] for start, end in itertools.pairwise([0, *ends])):
                batch = [by_doc[d] for d in shard]
                outputs = self.inner.generate_until(batch, disable_tqdm=True)
                correct = self._score(batch, outputs)
                for doc_id, output, ok in zip(shard, outputs, correct, strict=True):
                    answers[doc_id] = output
                    right += ok
                    if sequence is not None:
                        sequence.observe(1.0 if ok else 0.0)  # in the order drawn
                self.answered.extend(shard)
                n = len(answers)
                print(f"Running generate_until requests: sharded, {right} correct | {n}/{total}", flush=True)
                stop, band = self._ask(gate, sequence, total, n, right)
                self.trail.append(trail.point(n, right, band))
                line = {"total": total, "point": self.trail[-1]}
                print(f"gate: estimate {json.dumps(line)}", flush=True)  # for the worker's progress reader
                if stop:
                    self.stopped = stop
                    print(f"gate: stopped at {n} of {total} ({stop['rule']}): {stop['reason']}", flush=True)
                    break
            task.doc_iterator = _narrowed(task.doc_iterator, set(answers))
            return [answers.get(r.doc_id, "") for r in requests]

        def _score(self, batch: list[Any], outputs: list[str]) -> list[bool]:
            """The task's own filters and process_results on a shard's answers (then left as lm-eval expects)."""
            for request, output in zip(batch, outputs, strict=True):
                request.resps = [output]
            for ensemble in task._filters:
                if ensemble.name == filter_key:
                    ensemble.apply(batch)
            correct = [bool(task.process_results(r.doc, [r.filtered_resps[filter_key]])[metric]) for r in batch]
            for request in batch:
                request.resps, request.filtered_resps = [], {}
            return correct

        @staticmethod
        def _ask(
            gate: sequential.Gate,
            sequence: sequential.ConfidenceSequence | None,
            total: int,
            n: int,
            right: int,
        ) -> tuple[dict[str, Any] | None, tuple[float, float]]:
            """(the stop, if a rule says stop; the band the final score still lies in, for the running estimate)"""
            sure = sequential.certainty(gate, total, n, right)
            decision = sequential.decide(gate, sequence) if sequence is not None else None
            # the sequence already drops the scores the answers make impossible, so it lies within `reachable`
            band = decision.interval if decision is not None and decision.interval is not None else sure.reachable
            if n == total:
                return None, band
            if sure.stop:
                bound = [sure.reachable[0], sure.reachable[1]]
                return {"at": n, "of": total, "rule": "certainty", "reason": sure.reason, "bound": bound}, band
            if decision is not None and decision.stop and decision.interval is not None:
                stop = {
                    "at": n,
                    "of": total,
                    "rule": "confidence_sequence",
                    "alpha": decision.alpha,
                    "reason": decision.reason,
                    "bound": [decision.interval[0], decision.interval[1]],
                }
                return stop, band
            return None, band

    return Sharded()


def _narrowed(doc_iterator: Any, answered: set[int]) -> Any:
    """The task's documents, only those answered: lm-eval then scores and logs exactly those."""

    def iterate(**kwargs: Any) -> Iterator[tuple[int, Any]]:
        return ((i, doc) for i, doc in doc_iterator(**kwargs) if i in answered)

    return iterate


def _compile_templates_once() -> None:
    """lm-eval compiles a task's Jinja prompt template anew for every document it renders: 15,870 compiles for
    GSM8K's 1,319 questions with 5 shots, most of a stopped run's fixed cost (EleutherAI/lm-evaluation-harness
    issue #1286, open). A compiled template depends on its text alone, so compiling each text once renders the
    very same prompts (tests/test_sharded.py holds every prompt_hash to a full CLI run's)."""
    from lm_eval import utils

    utils.env.from_string = functools.lru_cache(maxsize=256)(utils.env.from_string)


def run(job: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    import lm_eval
    from lm_eval.api.registry import get_model
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable, simple_parse_args_string

    _compile_templates_once()
    model, model_args = job["model"], job["model_args"]
    # only the task's own folder of lm-eval's tasks, then the worker's overrides, which win a name both hold
    folders = [str(datasets.lm_eval_tasks_dir() / folder) for folder in job.get("task_dirs", [])]
    include = folders + ([job["include_path"]] if job.get("include_path") else [])
    manager = TaskManager(
        include_path=include or None, include_defaults=not folders, metadata=simple_parse_args_string(model_args)
    )
    tasks = manager.load(job["tasks"])["tasks"]
    if len(tasks) != 1:
        raise ValueError(f"the sharded driver runs one task, not {sorted(tasks)}")
    task = next(iter(tasks.values()))
    if task.get_config("output_type") != "generate_until":
        raise ValueError("the sharded driver runs generate_until tasks only")
    inner = get_model(model).create_from_arg_string(
        model_args, {"batch_size": job.get("batch_size"), "max_batch_size": None, "device": job.get("device")}
    )
    lm = make_lm(inner, task, job)
    tracker = EvaluationTracker(output_path=str(out_dir))
    started = time.monotonic()
    results = lm_eval.simple_evaluate(
        model=lm,
        model_args=model_args,
        tasks=[task],
        num_fewshot=job.get("num_fewshot"),
        batch_size=job.get("batch_size"),
        device=job.get("device"),
        log_samples=True,
        evaluation_tracker=tracker,
        apply_chat_template=job.get("apply_chat_template", False),
        fewshot_as_multiturn=job.get("fewshot_as_multiturn"),
        gen_kwargs=job.get("gen_kwargs"),
        task_manager=manager,
    )
    assert results is not None
    # as the CLI records them: the model's registry name, not this wrapper's class
    results["config"]["model"] = model
    tracker.general_config_tracker.log_experiment_args(
        model_source=model,
        model_args=model_args,
        system_instruction=None,
        chat_template=inner.chat_template(job.get("apply_chat_template")) if job.get("apply_chat_template") else None,
        fewshot_as_multiturn=job.get("fewshot_as_multiturn"),
    )
    if lm.stopped is not None:
        results["stopped"] = lm.stopped
    results["sharded"] = {
        "first_shard": job.get("first_shard", sequential.FIRST_SHARD),
        "shard_size": job.get("shard_size", sequential.SHARD_MOST),
        "seed": job.get("seed", ORDER_SEED),
        "answered": len(lm.answered),
        "trail": {"total": lm.total, "points": lm.trail},
        "seconds": round(time.monotonic() - started, 3),
    }
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for name in results["configs"]:
        tracker.save_results_samples(task_name=name, samples=samples[name])
    score = results["results"][task.task_name].get(job["rules"]["metric"])
    print(json.dumps({"task": task.task_name, job["rules"]["metric"]: score}, default=handle_non_serializable))
    return results


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m gate.checks.accuracy.sharded JOB.json OUT_DIR", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    run(job, Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
