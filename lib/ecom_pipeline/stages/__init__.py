"""The work of each pipeline stage; the notebooks call these functions."""
