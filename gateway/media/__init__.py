"""gateway/media."""
