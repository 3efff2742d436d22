"""Label maps, the label editor with its history, geometry and store, and NEMESIS ground truth."""
