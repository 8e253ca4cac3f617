"""gate: decides whether a model port is good enough to ship."""
