"""The worker room: claims runs over HTTP, runs lm-eval as a child process, uploads results. No database."""
