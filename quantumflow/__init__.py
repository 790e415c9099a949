"""What every part of QuantumFlow shares: the event schema and the command line."""
