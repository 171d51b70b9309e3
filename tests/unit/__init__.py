"""The fast tier: pure logic, no processes, no training, no servers. A package, so that its test modules may share
a file name with an end-to-end test (tests/e2e has no __init__.py: its modules import its conftest by name)."""
