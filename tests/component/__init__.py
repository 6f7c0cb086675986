"""Level 2: executors, run_fns, Beam reading, models and servables on a few KB of data in temp dirs."""
