-- End-to-end encryption becomes a per-channel switch with an instance default.
-- Every existing channel was encrypted, so the column defaults to true, except
-- channels that already carried webhooks, which were plaintext in practice.

ALTER TABLE channels ADD COLUMN e2e_enabled BOOLEAN NOT NULL DEFAULT true;

UPDATE channels SET e2e_enabled = false
WHERE id IN (SELECT channel_id FROM webhooks);

-- Direct messages are always end-to-end encrypted.
ALTER TABLE channels
    ADD CONSTRAINT channels_dm_always_e2e CHECK (channel_type <> 'dm' OR e2e_enabled);

INSERT INTO instance_settings (key, value) VALUES ('e2e_default_enabled', 'true')
ON CONFLICT (key) DO NOTHING;
