"""Running generated code: on the host (host.py) and, later, on emulated and real boards."""
