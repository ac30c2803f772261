"""One adapter per outside system; each turns that system's errors into the project's own."""
