"""llmwatch: event-driven streaming monitoring and evaluation for LLMs in production."""

__version__ = "0.1.0"
