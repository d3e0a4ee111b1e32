"""The sliver tree: container manager, deployment agent, application supervisor, monitors."""
