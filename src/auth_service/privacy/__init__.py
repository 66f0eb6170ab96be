"""Personal data: export of everything stored about a user, and self-service deletion with a
grace period whose final erasure housekeeping performs (docs/privacy.md, ADR 0911)."""
