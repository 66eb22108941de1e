"""The test suite: a package, so that tests/sequencer and tests/deploy shadow no real package."""
