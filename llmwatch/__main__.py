"""`python -m llmwatch` is the same as the `llmwatch` command."""

from llmwatch.cli import main

if __name__ == "__main__":  # engines that spawn processes (vLLM) re-import the main module
    main()
