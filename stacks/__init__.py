"""CDK code for the restore runbook: typed settings, one construct per capability, one stack composing them."""
