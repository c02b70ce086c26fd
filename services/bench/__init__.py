"""`touchpoint bench`: the system on this machine, measured against its building blocks."""
