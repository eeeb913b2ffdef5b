.PHONY: test lint examples bench

test:
	python -m pytest -q

lint:
	ruff check .

examples:
	python examples/seed_symbols.py
	python examples/train_digits.py
	python examples/custom_swish.py

bench:
	python perf/bench_mlp.py
	python perf/bench_memory.py
