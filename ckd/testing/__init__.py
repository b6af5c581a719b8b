"""Test and benchmark helpers: a real inference server on loopback and a fault-injecting proxy."""
