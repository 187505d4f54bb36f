-- Polls. Question and options are plaintext: the server has to count the votes.

CREATE TABLE polls (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id       UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- CASCADE: the poll is the content of its message.
    message_id       UUID UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
    created_by       UUID REFERENCES users (id) ON DELETE SET NULL,
    question         TEXT NOT NULL,
    multiple_choice  BOOLEAN NOT NULL DEFAULT false,
    anonymous        BOOLEAN NOT NULL DEFAULT false,
    closes_at        TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT polls_question_length CHECK (char_length(question) BETWEEN 1 AND 300),
    CONSTRAINT polls_closes_after_creation CHECK (closes_at IS NULL OR closes_at > created_at)
);

CREATE INDEX polls_channel_id_idx ON polls (channel_id);
CREATE INDEX polls_created_by_idx ON polls (created_by);

CREATE TABLE poll_options (
    id        UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    poll_id   UUID NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    position  SMALLINT NOT NULL,
    label     TEXT NOT NULL,
    CONSTRAINT poll_options_position_key UNIQUE (poll_id, position),
    CONSTRAINT poll_options_id_poll_key UNIQUE (id, poll_id),
    CONSTRAINT poll_options_position_range CHECK (position BETWEEN 0 AND 19),
    CONSTRAINT poll_options_label_length CHECK (char_length(label) BETWEEN 1 AND 100)
);

CREATE TABLE poll_votes (
    poll_id    UUID NOT NULL,
    option_id  UUID NOT NULL,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    voted_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (option_id, user_id),
    -- Composite key: the option must belong to the poll named on the vote, so
    -- "one vote per poll" (single-choice polls, checked by the server) can be asked
    -- of (poll_id, user_id).
    CONSTRAINT poll_votes_option_fkey FOREIGN KEY (option_id, poll_id)
        REFERENCES poll_options (id, poll_id) ON DELETE CASCADE
);

CREATE INDEX poll_votes_poll_user_idx ON poll_votes (poll_id, user_id);
CREATE INDEX poll_votes_user_id_idx ON poll_votes (user_id);
