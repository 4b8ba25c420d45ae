"""The parts of scripts/benchmark.py, by what they measure: configurations (which settings are
compared), runs (shared set-up: the tool's options and models, synthetic batches, timing, warm-up),
speed (one process: training and inference speed per configuration, with memory and FLOPs),
memory (peak memory), flops (FLOP counts and the hardware's convolution peak), scaling (data-parallel
training under torchrun against a single-process baseline) and report (the table and JSON lines).
testpy_speed is a script of its own: whole test.py runs, start-up, loading and writing included;
bench_generator holds the random-weights generator it and scripts/tile_benchmark.py give test.py."""
