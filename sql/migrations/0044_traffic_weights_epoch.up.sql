-- Fencing of the controller (issue 22): the epoch and instance of the controller that wrote each move, and the
-- command ids the compacted topic remembers as applied. Rows written before this have epoch 0.
ALTER TABLE traffic_weights
    ADD COLUMN IF NOT EXISTS epoch UInt64 DEFAULT 0 AFTER updated_at,
    ADD COLUMN IF NOT EXISTS controller Nullable(String) AFTER epoch,
    ADD COLUMN IF NOT EXISTS applied_commands Array(String) AFTER command_id
