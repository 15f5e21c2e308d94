"""Tests of the Redis/Valkey store plugin against real redis-server processes."""
