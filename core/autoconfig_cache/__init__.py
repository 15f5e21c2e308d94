"""autoconfig-cache: a persistent, encrypted, pluggable cache for LaunchDarkly AutoConfig data."""

from __future__ import annotations
