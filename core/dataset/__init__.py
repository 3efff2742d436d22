"""Dataset folders (what training reads and what is uploaded), NEMESIS import and integrity checks."""
