"""Documentation pictures made from the code (the labelled cloud of docs/node.md)."""
