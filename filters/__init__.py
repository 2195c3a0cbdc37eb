"""Scorers and the keep/drop policy. Each works on plain rows or arrays, without Ray."""
