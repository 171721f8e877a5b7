"""Shared kernel: base models, API base classes, problem details, env helpers.

The kernel imports no module app; every module app may import the kernel.
"""
