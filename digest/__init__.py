"""digest: gather a week's articles, rank them, render an email, send it to subscribers."""

__version__ = "0.1.0"
USER_AGENT = f"digest/{__version__} (+https://github.com/digest-newsletter/digest)"
