-- Schema 1.1 of InferenceEvent: the OpenTelemetry GenAI conventions' structured fields, added beside the flat ones
-- (no column changes or goes away, so every existing query and view keeps working). Messages, system instructions
-- and tool definitions are stored as their JSON text ('' when the event has none); tool_calls and tool_names are
-- derived from the output messages so a query finds tool calls without parsing JSON. Request parameters are one
-- column each (request_*), NULL where the caller gave none.
ALTER TABLE inference_events
    ADD COLUMN IF NOT EXISTS operation_name            LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS provider_name             LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS response_model            LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS response_id               Nullable(String),
    ADD COLUMN IF NOT EXISTS system_instructions       String DEFAULT '' CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS input_messages            String DEFAULT '' CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS output_messages           String DEFAULT '' CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS tool_definitions          String DEFAULT '' CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS tool_calls                String DEFAULT '' CODEC(ZSTD(3)),
    ADD COLUMN IF NOT EXISTS tool_names                Array(LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS finish_reasons            Array(LowCardinality(String)),
    ADD COLUMN IF NOT EXISTS request_temperature       Nullable(Float64),
    ADD COLUMN IF NOT EXISTS request_top_p             Nullable(Float64),
    ADD COLUMN IF NOT EXISTS request_top_k             Nullable(Float64),
    ADD COLUMN IF NOT EXISTS request_max_tokens        Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS request_seed              Nullable(Int64),
    ADD COLUMN IF NOT EXISTS request_stop_sequences    Array(String),
    ADD COLUMN IF NOT EXISTS request_frequency_penalty Nullable(Float64),
    ADD COLUMN IF NOT EXISTS request_presence_penalty  Nullable(Float64),
    ADD COLUMN IF NOT EXISTS request_stream            Nullable(Bool),
    ADD COLUMN IF NOT EXISTS request_output_type       LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS request_tool_choice       Nullable(String),
    ADD COLUMN IF NOT EXISTS error_type                LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS cached_input_tokens       UInt32 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS reasoning_tokens          UInt32 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS trace_id                  Nullable(String),
    ADD COLUMN IF NOT EXISTS span_id                   Nullable(String),
    ADD COLUMN IF NOT EXISTS parent_span_id            Nullable(String)
