-- Invite codes for closed registration.

CREATE TABLE registration_invites (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    code        TEXT NOT NULL UNIQUE,
    -- SET NULL: an admin's invites stay valid after the admin account is removed.
    created_by  UUID REFERENCES users (id) ON DELETE SET NULL,
    max_uses    INTEGER,
    use_count   INTEGER NOT NULL DEFAULT 0,
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT registration_invites_code_format CHECK (code ~ '^[A-Za-z0-9-]{8,64}$'),
    CONSTRAINT registration_invites_max_uses_positive CHECK (max_uses IS NULL OR max_uses > 0),
    CONSTRAINT registration_invites_use_count_bounds
        CHECK (use_count >= 0 AND (max_uses IS NULL OR use_count <= max_uses))
);

-- Which invite brought a user in (a moderation trail). SET NULL: deleting an invite
-- must not delete the accounts created with it.
ALTER TABLE users
    ADD COLUMN invited_with UUID REFERENCES registration_invites (id) ON DELETE SET NULL;
CREATE INDEX users_invited_with_idx ON users (invited_with) WHERE invited_with IS NOT NULL;
