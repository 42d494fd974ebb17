"""The one Logger, Tracer and Metrics for every step, so logs share a format and a service name."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# Only the AWS calls are traced. Tracer's default patches every library the X-Ray SDK knows, which
# imports each one that is installed (requests, psycopg2, sqlite3 ...) into every function's cold
# start, whether or not the function uses it; the SQL steps time their own queries in their report.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
