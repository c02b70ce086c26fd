"""`touchpoint demo`: simulated customers, their history and answers, through the real services."""
