ALTER TABLE canary_verdicts DROP COLUMN IF EXISTS judge_instance
