"""Local exchanges: servers on loopback that speak a venue's real market-data protocol (websocket and
REST) and play a recording, with faults on demand, for tests and offline demos."""
