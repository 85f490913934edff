"""Replay evaluation of drive bags through the node, its report and plots, the demo."""
