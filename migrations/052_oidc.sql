-- Single sign-on with OpenID Connect. A user may link several identities; an
-- (issuer, subject) pair names exactly one account. Accounts created through
-- OIDC have no local password.

ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;

CREATE TABLE oidc_identities (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issuer         TEXT NOT NULL,
    subject        TEXT NOT NULL,
    email          TEXT,
    linked_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at  TIMESTAMPTZ,
    CONSTRAINT oidc_identities_issuer_subject_key UNIQUE (issuer, subject),
    CONSTRAINT oidc_identities_issuer_url CHECK (issuer ~ '^https?://'),
    CONSTRAINT oidc_identities_subject_length CHECK (char_length(subject) BETWEEN 1 AND 255)
);

CREATE INDEX oidc_identities_user_id_idx ON oidc_identities (user_id);

-- Authorization requests in flight (state, nonce, PKCE verifier); short-lived.
CREATE TABLE oidc_login_states (
    state          TEXT PRIMARY KEY,
    nonce          TEXT NOT NULL,
    pkce_verifier  TEXT NOT NULL,
    redirect_to    TEXT,
    -- Set when a signed-in user links a further identity. CASCADE: the half-finished
    -- link dies with the account.
    link_user_id   UUID REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT oidc_login_states_expiry_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX oidc_login_states_expires_at_idx ON oidc_login_states (expires_at);
CREATE INDEX oidc_login_states_link_user_id_idx ON oidc_login_states (link_user_id)
    WHERE link_user_id IS NOT NULL;
