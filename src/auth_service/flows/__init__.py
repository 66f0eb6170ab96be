"""Server-side flows: a sign-in (or consent) in progress that must outlive one request."""
