"""`llmwatch demo` (tooling, not product): the storyline (story), its orchestration (run), the live view (view)
and the HTML report (report). No product module imports it."""

from .run import DemoOptions, DemoResult, run_demo

__all__ = ["DemoOptions", "DemoResult", "run_demo"]
