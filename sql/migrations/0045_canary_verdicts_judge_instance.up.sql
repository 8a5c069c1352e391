-- The judge instance that made each verdict (issue 22: several judges may run, one active at a time).
ALTER TABLE canary_verdicts ADD COLUMN IF NOT EXISTS judge_instance Nullable(String) AFTER judge
