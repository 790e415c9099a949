"""The FastAPI query and prediction service (docs/api.md): ``api.app.create_app(settings)`` builds it,
``quantumflow api`` serves it, ``python -m bench.api`` loads it."""
