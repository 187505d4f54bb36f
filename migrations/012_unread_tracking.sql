-- Per-user read position in each channel, for unread badges and mention counts.

CREATE TABLE read_states (
    user_id               UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id            UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- SET NULL: if the marker message is hard-deleted, last_read_at still bounds the count.
    last_read_message_id  UUID REFERENCES messages (id) ON DELETE SET NULL,
    last_read_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    mention_count         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, channel_id),
    CONSTRAINT read_states_mention_count_nonnegative CHECK (mention_count >= 0)
);

CREATE INDEX read_states_channel_id_idx ON read_states (channel_id);
CREATE INDEX read_states_last_read_message_idx ON read_states (last_read_message_id)
    WHERE last_read_message_id IS NOT NULL;
