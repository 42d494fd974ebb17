"""Domain code behind the restore runbook's Lambda steps."""
