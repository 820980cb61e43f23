"""What the tests share: city builders, fakes, real-process helpers."""
