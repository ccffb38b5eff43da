"""Histories: discovery, readers for every format, run directories, and the one `Curves` value they produce."""
