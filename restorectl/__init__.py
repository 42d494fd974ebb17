"""The restore runbook command line and the laptop rehearsal (emulated AWS, real local PostgreSQL)."""
