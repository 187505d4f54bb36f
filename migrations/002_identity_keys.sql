-- Long-term identity keys (Signal protocol, X3DH). One per user; the private half
-- never leaves the client. Replacing the key is an UPDATE, which clients surface
-- as "safety number changed".

CREATE TABLE identity_keys (
    user_id     UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Curve25519 public keys are 32 bytes; Signal's serialised form adds a one-byte type prefix.
    CONSTRAINT identity_keys_public_key_length CHECK (octet_length(public_key) IN (32, 33))
);

CREATE TRIGGER identity_keys_set_updated_at
    BEFORE UPDATE ON identity_keys
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
