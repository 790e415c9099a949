"""The FastAPI query and prediction service (coming with the API issue)."""
