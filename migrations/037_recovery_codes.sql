-- One-time recovery codes for accounts with two-factor authentication, stored as
-- Argon2id hashes (PHC strings). A used code is kept, marked, so it cannot be reused.

CREATE TABLE recovery_codes (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    used_at     TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT recovery_codes_hash_format CHECK (code_hash LIKE '$argon2%')
);

CREATE INDEX recovery_codes_user_id_idx ON recovery_codes (user_id);
CREATE INDEX recovery_codes_unused_idx ON recovery_codes (user_id) WHERE used_at IS NULL;
