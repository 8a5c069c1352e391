DROP TABLE IF EXISTS canary_verdicts
