"""Hosted pages: sign in, sign up, verify, recover, account, consent; server-rendered, with no
JavaScript needed for any password flow, nothing loaded from another origin."""
