.PHONY: test lint examples bench

test:
	python -m pytest -q

lint:
	ruff check .

examples:
	python examples/seed_symbols.py

bench:
	@echo "perf/ benchmarks: see perf/README.md" && python perf/bench_mlp_step.py
