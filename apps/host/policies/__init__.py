"""Platform policies: kinds with validated parameters, and the one evaluation service."""
