"""The `recordings-restore` workflow (runbook "S3 Recordings Backup"): restore call recordings from S3 versions."""
