"""Control-plane services: every write goes through a function here."""
