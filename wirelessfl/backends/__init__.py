"""Execution backends beyond one local process (Ray); imported only when asked for."""
