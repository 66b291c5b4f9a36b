"""Customer complaints: the failing units resolved to lots, and the 8D worked on them."""
