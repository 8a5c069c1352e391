ALTER TABLE canary_verdicts
    DROP COLUMN IF EXISTS requests_needed,
    DROP COLUMN IF EXISTS srm_p_value,
    DROP COLUMN IF EXISTS observed_share,
    DROP COLUMN IF EXISTS srm_detected,
    DROP COLUMN IF EXISTS pass_threshold,
    DROP COLUMN IF EXISTS pass_evidence,
    DROP COLUMN IF EXISTS next_weight
