"""The monthly restore drill: restore to a throwaway copy, validate, measure against RTO/RPO, always tear down."""
