"""Drawing and exporting a classification: colour maps, overlays, trust marks, PNG and NPZ files."""
