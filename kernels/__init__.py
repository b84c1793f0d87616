"""Compute kernels of the gpt-oss engine.

Each module holds one operation: its torch reference (what the CPU path runs) and, where one exists, the
Triton kernel and host wrapper that the GPU path runs. ``kernels`` imports neither ``engine`` nor Qt.
"""
