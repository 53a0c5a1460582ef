"""Event schemas: validation tests, plus builders and strategies other suites import (events.strategies)."""
