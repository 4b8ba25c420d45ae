"""The run machinery: training state and resume, the in-training evaluator and metric collection,
the visualizer with its web pages, curves and experiment loggers, and stop signals."""
