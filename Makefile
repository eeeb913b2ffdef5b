.PHONY: test test-gpu lint examples bench kernel-report

test:
	python -m pytest -q -n auto

# On a CUDA machine: the whole suite on the GPU, then compute-sanitizer over the kernel tests.
test-gpu:
	scripts/gpu_checks.sh gpu-logs

lint:
	ruff check .

examples:
	python examples/seed_symbols.py
	python examples/train_digits.py
	python examples/custom_swish.py

bench:
	python perf/bench_linear.py
	python perf/bench_softmax.py
	python perf/bench_activation.py
	python perf/bench_mlp.py
	python perf/bench_memory.py
	python perf/bench_bind.py
	python perf/bench_operators.py
	python perf/bench_attention.py
	python perf/bench_transformer.py
	python perf/bench_decode.py
	python perf/bench_convolution.py
	python perf/bench_rnn.py

# What each kernel compiles to for sm_90 (shared memory, registers, tensor-core
# instructions, copy widths), read from the compiler's output; needs no GPU.
kernel-report:
	python perf/kernel_report.py
