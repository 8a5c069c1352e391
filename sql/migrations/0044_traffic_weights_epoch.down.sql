ALTER TABLE traffic_weights
    DROP COLUMN IF EXISTS applied_commands,
    DROP COLUMN IF EXISTS controller,
    DROP COLUMN IF EXISTS epoch
