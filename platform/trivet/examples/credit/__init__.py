"""A credit-lending example: applicants, their credit history and transactions.

See :mod:`trivet.examples.credit.data` for the deterministic data generator.
"""
