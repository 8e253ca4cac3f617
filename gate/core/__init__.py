"""Pure gate logic: verdicts, statistics, baselines and lm-eval outputs. No HTTP, no SQL."""
