"""Level 1: pure functions, configuration and static checks, with hand-computed expectations."""
