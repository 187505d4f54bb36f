-- Group channels use Signal-style sender keys: each sender encrypts a message once
-- with their sender key, and hands that key to every member over the pairwise
-- (X3DH + Double Ratchet) session. The server relays these distribution messages,
-- each encrypted for exactly one recipient, until the recipient fetches them.

CREATE TABLE sender_key_distributions (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id       UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- CASCADE on sender and recipient: a key from, or for, a removed account is useless.
    sender_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    recipient_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    distribution_id  UUID NOT NULL,
    ciphertext       BYTEA NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT sender_key_distributions_once
        UNIQUE (channel_id, sender_id, recipient_id, distribution_id),
    CONSTRAINT sender_key_distributions_not_self CHECK (sender_id <> recipient_id),
    CONSTRAINT sender_key_distributions_ciphertext_size CHECK (octet_length(ciphertext) <= 16384)
);

-- A recipient fetches everything addressed to them, channel by channel.
CREATE INDEX sender_key_distributions_recipient_idx
    ON sender_key_distributions (recipient_id, channel_id, created_at);
CREATE INDEX sender_key_distributions_sender_idx ON sender_key_distributions (sender_id);
