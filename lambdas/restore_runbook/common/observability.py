"""The one Logger, Tracer and Metrics for every step, so logs share a format and a service name."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
