"""The dynamodb store plugin for autoconfig-cache."""
