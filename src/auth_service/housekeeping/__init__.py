"""Housekeeping: purging expired and finished rows in small batches, on a schedule that one
worker of the deployment runs at a time (docs/operations/housekeeping.md, ADR 0910)."""
