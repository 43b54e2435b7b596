"""CSS support in the mail clients that ignore the most: Gmail and Outlook for Windows.

`css.json` is a subset of caniemail's data (https://www.caniemail.com, MIT, see LICENSE here),
made by `python -m digest.render.caniemail.extract PATH/TO/caniemail/features`: for each CSS
feature, its newest test result in Gmail's webmail and in Outlook for Windows. Preflight warns
(it never blocks) when the rendered HTML uses a feature one of them does not support.
"""
