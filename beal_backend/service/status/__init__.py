"""The status page's parts: the data the template shows (view) and its SVG charts (charts)."""
