"""The worker: claims runs over HTTP and executes them by kind (gate.checks). Never the database."""
