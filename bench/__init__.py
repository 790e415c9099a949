"""Benchmarks (``make bench``): throughput of the book and the flow, the models' cost per event, the API
under load. They read recordings and build stores of their own; a user's store is only ever read."""
