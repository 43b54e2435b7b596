"""The web app: public subscriber pages, the one-click unsubscribe endpoint, ESP webhooks."""
