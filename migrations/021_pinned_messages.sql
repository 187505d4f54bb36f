-- Pinned messages. A pin must point at a message of the same channel, so messages
-- gets an (id, channel_id) key for a composite foreign key.

ALTER TABLE messages ADD CONSTRAINT messages_id_channel_key UNIQUE (id, channel_id);

CREATE TABLE pinned_messages (
    channel_id  UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    message_id  UUID NOT NULL,
    -- SET NULL: a pin stays after the member who pinned it leaves.
    pinned_by   UUID REFERENCES users (id) ON DELETE SET NULL,
    pinned_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, message_id),
    CONSTRAINT pinned_messages_message_fkey FOREIGN KEY (message_id, channel_id)
        REFERENCES messages (id, channel_id) ON DELETE CASCADE
);

CREATE INDEX pinned_messages_message_idx ON pinned_messages (message_id, channel_id);
