"""Root test configuration: registers the shared fixtures (fake upstream, throwaway TLS)."""

pytest_plugins = ["tests.fakes.fixtures"]
