"""The redis store plugin for autoconfig-cache."""
