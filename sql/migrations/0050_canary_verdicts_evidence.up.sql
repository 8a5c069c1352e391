-- Judge stratified@2: the step a verdict is for, its pass evidence, the sample-ratio check and the requests a decision
-- still needs (CanaryVerdict fields added in place; older verdicts read NULL / false).
ALTER TABLE canary_verdicts
    ADD COLUMN IF NOT EXISTS next_weight     Nullable(Float64) AFTER canary_weight,
    ADD COLUMN IF NOT EXISTS pass_evidence   Nullable(Float64) AFTER next_weight,
    ADD COLUMN IF NOT EXISTS pass_threshold  Nullable(Float64) AFTER pass_evidence,
    ADD COLUMN IF NOT EXISTS srm_detected    Bool DEFAULT false AFTER pass_threshold,
    ADD COLUMN IF NOT EXISTS observed_share  Nullable(Float64) AFTER srm_detected,
    ADD COLUMN IF NOT EXISTS srm_p_value     Nullable(Float64) AFTER observed_share,
    ADD COLUMN IF NOT EXISTS requests_needed Nullable(UInt64) AFTER srm_p_value
