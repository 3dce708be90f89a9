"""Pure protocol cores: bytes in, events out; no trio, sockets, os, time or randomness.

``tests/sansio/test_purity.py`` walks these modules' imports and fails on a forbidden one.
"""
