"""The project's own exceptions: driver errors are wrapped in these (`raise X(...) from e`)."""


class LlmwatchError(Exception):
    """Base of every error llmwatch raises on purpose; the CLI prints these without a traceback."""

    exit_code = 1


class ConfigError(LlmwatchError):
    exit_code = 2


class KafkaError(LlmwatchError):
    pass


class ClickHouseError(LlmwatchError):
    pass
