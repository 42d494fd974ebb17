"""IAM statement builders the workflows share: RDS ARNs and fences, the API hosts, the journal."""
