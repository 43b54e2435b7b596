"""Staff: the people who run the newsletter, how they prove who they are (a password for the
console, API tokens for scripts) and what their role lets them do.

accounts (add, list, remove, passwords, sign-in), tokens (API tokens, only their hash kept),
sessions (the console's signed cookie, its CSRF token, logout), roles (who may do what).
The faces (`digest staff`, the web app's API and console) call these; none of them stores a
password or a token itself.
"""
