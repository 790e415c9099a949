"""The ``quantumflow`` command: the top of the stack, wiring every layer together for users."""
