"""The review pipeline: discover, parse, run the child, assemble, phases and the verdict."""
