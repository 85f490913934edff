"""The localizer node's runtime: the node, its parameters, topics and message conversions."""
