"""The parts of scripts/benchmark.py, by what they measure: configurations (which settings are
compared), runs (shared set-up: the tool's options and models, synthetic batches, timing, warm-up),
speed (one process: training and inference speed per configuration, with memory and FLOPs),
memory (peak memory), flops (FLOP counts and the hardware's convolution peak), scaling (data-parallel
training under torchrun against a single-process baseline) and report (the table and JSON lines).
testpy_speed, train_speed and train_memory are scripts of their own, on whole runs: test.py's images per
second (start-up, loading and writing included), train.py's seconds per iteration, train.py's peak memory
(whole_runs holds what they share);
bench_generator holds the random-weights generator it and scripts/tile_benchmark.py give test.py."""
