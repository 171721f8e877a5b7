"""Data contract logic that is not a service: lifecycle rules, JSON Schema generation."""
