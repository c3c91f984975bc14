"""The page's icon, served at ``/favicon.ico`` (browsers ask for it on every load; a 404 is a console error).

A small SVG kept in code: package data only ships html/js/css/json/txt files.
"""

ICON_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
            b'<rect width="32" height="32" rx="6" fill="#24425f"/>'
            b'<path d="M6 16h3M11 10v12M15 6v20M19 11v10M23 8v16M27 14v4" stroke="#fff" stroke-width="2.4" '
            b'stroke-linecap="round"/></svg>')
