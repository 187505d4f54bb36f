-- Two-factor authentication (TOTP), password-change tracking, and refresh-token
-- rotation with reuse detection.

ALTER TABLE users
    -- Encrypted with the server's secret key; never stored in the clear.
    ADD COLUMN totp_secret_encrypted BYTEA,
    ADD COLUMN totp_enabled BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN password_changed_at TIMESTAMPTZ,
    ADD CONSTRAINT users_totp_needs_secret CHECK (NOT totp_enabled OR totp_secret_encrypted IS NOT NULL);

-- Each refresh hands out a new token of the same family; presenting a superseded
-- token revokes the whole family. Existing tokens each start a family of their own.
ALTER TABLE refresh_tokens
    ADD COLUMN family_id UUID NOT NULL DEFAULT gen_random_uuid(),
    -- SET NULL: the cleanup job deletes expired successors before their predecessors.
    ADD COLUMN replaced_by UUID REFERENCES refresh_tokens (id) ON DELETE SET NULL;

CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_replaced_by_idx ON refresh_tokens (replaced_by) WHERE replaced_by IS NOT NULL;

-- A TOTP code is accepted once: the time step it belongs to is recorded on use.
CREATE TABLE totp_used_steps (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    time_step  BIGINT NOT NULL,
    used_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, time_step),
    CONSTRAINT totp_used_steps_time_step_positive CHECK (time_step > 0)
);
