"""Test helpers shared across tiers: real servers on loopback (Azurite, scoring service)."""
