"""Label maps (the label-PNG reader and writer), the label editor with its history, geometry and store, NEMESIS codes."""
