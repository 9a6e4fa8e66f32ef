"""The MOM policy language (placeholder until the engine lands)."""
