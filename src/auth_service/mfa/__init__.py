"""Second factors and passkeys: TOTP, recovery codes, WebAuthn; the policy that asks for them
and the step-up rules of sensitive operations. No HTTP here (``routes.py`` is the face)."""
