"""The operations console (`/console`): pages for people, over the same data and policies as the REST routes.

`routes.py` the pages and their live streams · `session.py` sign-in, the session cookie and CSRF ·
`views.py` what each page reads · `charts.py` server-drawn SVG · `templates/` and `static/` the markup, the
stylesheet and the one small script (no CDN, nothing fetched from elsewhere).
"""
