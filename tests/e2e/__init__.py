"""Level 4: the real local pipeline, the Kubeflow spec replayed task by task, the benchmarks,
the notebooks and the README's commands, end to end on small data."""
