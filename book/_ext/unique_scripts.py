"""Drop duplicate <script> entries from each page.

sphinx-thebe 0.3.1 registers its inline configuration script once per read phase; under
Sphinx 7.4 that happens twice, and the second `const THEBE_JS_URL` throws
"Identifier has already been declared" in every page's console.
"""


def _unique_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # inline scripts come as filename None or "" depending on how they were added
        key = (str(getattr(script, "filename", script) or ""),
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # early: html-page-context stops at the first handler that returns a template name
    app.connect("html-page-context", _unique_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
