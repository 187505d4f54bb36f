-- X3DH prekeys. A signed prekey is rotated periodically (clients keep the last few
-- to finish handshakes in flight); one-time prekeys are handed out once each and
-- deleted as they are claimed.

CREATE TABLE signed_prekeys (
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_id      INTEGER NOT NULL,
    public_key  BYTEA NOT NULL,
    signature   BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key_id),
    CONSTRAINT signed_prekeys_key_id_range CHECK (key_id >= 0),
    CONSTRAINT signed_prekeys_public_key_length CHECK (octet_length(public_key) IN (32, 33)),
    -- XEdDSA signature by the identity key.
    CONSTRAINT signed_prekeys_signature_length CHECK (octet_length(signature) = 64)
);

-- The key-bundle endpoint serves each user's newest signed prekey.
CREATE INDEX signed_prekeys_user_newest_idx ON signed_prekeys (user_id, created_at DESC);

CREATE TABLE one_time_prekeys (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_id      INTEGER NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT one_time_prekeys_user_key_id_key UNIQUE (user_id, key_id),
    CONSTRAINT one_time_prekeys_key_id_range CHECK (key_id >= 0),
    CONSTRAINT one_time_prekeys_public_key_length CHECK (octet_length(public_key) IN (32, 33))
);

-- Claiming takes the oldest key of a user (ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED).
CREATE INDEX one_time_prekeys_claim_idx ON one_time_prekeys (user_id, id);
