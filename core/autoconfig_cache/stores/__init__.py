"""Built-in stores. They register through the same hook as third-party plugins."""
