"""Bytewax flows and their sources and sinks; for now the recording readers, the replay driver and the benchmark."""
