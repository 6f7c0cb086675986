"""Level 3: the Kubeflow specs, the portable Beam runner and the serving clients up to each
service's boundary (compiled specs, recording API servers, documented wire formats)."""
