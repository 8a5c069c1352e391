# The two commands of the README. Both install what they need first (idempotent, cached).
.PHONY: demo test install lint

install:
	bash scripts/install.sh

demo: install
	bash scripts/demo.sh

test: install
	bash scripts/test.sh

lint:
	ruff check . && ruff format --check .
